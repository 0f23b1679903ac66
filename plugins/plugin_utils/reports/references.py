# -*- coding: utf-8 -*-
# Copyright: kubeports.firewall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A rule's references as the reports show them: the public page, labelled by its site and section.

A reference that is no URL (``kubeports_extra_rules``, or what a user wrote for an extra
rule) is shown as it is.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from html import escape

from ansible.module_utils.six.moves.urllib.parse import unquote, urlsplit

from ansible_collections.kubeports.firewall.plugins.plugin_utils.planning.catalog import is_url


def label(reference):
    """``docs.rancher.cn § 常用的端口`` for a URL with a section; the site and path without one.

    A file on GitHub is named by its repository and file name.
    """
    reference = str(reference)
    if not is_url(reference):
        return reference
    parts = urlsplit(reference)
    site = parts.netloc
    segments = [segment for segment in parts.path.split('/') if segment]
    if site == 'github.com' and len(segments) > 2:
        # A file in a repository: the repository and the file name say more than the host.
        site = '%s/%s' % (segments[1], segments[-1])
    if parts.fragment:
        return '%s § %s' % (site, unquote(parts.fragment))
    if site != parts.netloc:
        return site
    return parts.netloc + parts.path.rstrip('/')


def markdown(reference):
    """A Markdown link, safe inside a table cell."""
    text = label(reference).replace('|', '\\|').replace('[', '\\[').replace(']', '\\]')
    if not is_url(reference):
        return text
    return '[%s](%s)' % (text, str(reference).replace('|', '%7C').replace(')', '%29').replace(' ', '%20'))


def html(reference):
    """An HTML link, escaped."""
    if not is_url(reference):
        return escape(str(reference))
    return '<a href="%s">%s</a>' % (escape(str(reference)), escape(label(reference)))

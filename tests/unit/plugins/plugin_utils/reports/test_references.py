# -*- coding: utf-8 -*-
import pytest

from ansible_collections.kubeports.firewall.plugins.plugin_utils.reports import references

RANCHER = 'https://docs.rancher.cn/docs/rancher2/installation/requirements/ports/_index#%E5%B8%B8%E7%94%A8%E7%9A%84%E7%AB%AF%E5%8F%A3'


@pytest.mark.parametrize('reference, label', [
    (RANCHER, 'docs.rancher.cn § 常用的端口'),
    ('https://kubernetes.io/zh-cn/docs/reference/networking/ports-and-protocols/#control-plane',
     'kubernetes.io § control-plane'),
    ('https://docs.k3s.io/installation/requirements/', 'docs.k3s.io/installation/requirements'),
    ('https://github.com/flannel-io/flannel/blob/master/Documentation/backends.md#vxlan', 'flannel/backends.md § vxlan'),
    ('https://github.com/kubernetes-sigs/metrics-server', 'github.com/kubernetes-sigs/metrics-server'),
    ('kubeports_extra_rules', 'kubeports_extra_rules'),
    ('our wiki, page 3', 'our wiki, page 3'),
])
def test_label(reference, label):
    assert references.label(reference) == label


@pytest.mark.parametrize('reference, markdown', [
    (RANCHER, '[docs.rancher.cn § 常用的端口](%s)' % RANCHER),
    ('https://kubernetes.io/a|b#x', '[kubernetes.io § x](https://kubernetes.io/a%7Cb#x)'),
    ('a | b', 'a \\| b'),
])
def test_markdown_link_is_safe_in_a_table_cell(reference, markdown):
    assert references.markdown(reference) == markdown


@pytest.mark.parametrize('reference, html', [
    ('https://kubernetes.io/p?a=1&b=2#s', '<a href="https://kubernetes.io/p?a=1&amp;b=2#s">kubernetes.io § s</a>'),
    ('<script>', '&lt;script&gt;'),
    ('javascript:alert(1)', 'javascript:alert(1)'),
])
def test_html_link_is_escaped_and_only_for_web_pages(reference, html):
    assert references.html(reference) == html

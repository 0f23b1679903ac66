"""Helpers shared by the unit tests."""


def ports_of(host_plan):
    """{"6443/tcp": rule} for a HostPlan."""
    return dict(('%s/%s' % (rule['port'], rule['protocol']) if rule['port'] else rule['protocol'], rule)
                for rule in host_plan.rules)

"""``{{ event|audit_detail }}``: an audit event's facts in words (apikeys.audit.describe), whole."""

from django import template

from apikeys.audit import describe

register = template.Library()


@register.filter
def audit_detail(event) -> str:
    return describe(event)

"""Tags the flow pages use for what concerns keys: ``{% flow_delete_note flow as note %}``."""

from django import template

from apikeys.services import keys_reaching_only

register = template.Library()


@register.simple_tag
def flow_delete_note(flow) -> str:
    """Words naming the keys that deleting ``flow`` would leave reaching no flow; "" when there are none."""
    return delete_note(keys_reaching_only(flow))


def delete_note(keys) -> str:
    if not keys:
        return ""
    names = ", ".join(f"“{api_key.name or 'Untitled'}” ({api_key.masked})" for api_key in keys)
    if len(keys) == 1:
        return (f"The key {names} is limited to this flow alone: it would then reach no flow. "
                "Revoke it, or give it other flows, on the API Keys page.")
    return (f"{len(keys)} keys are limited to this flow alone and would then reach no flow: {names}. "
            "Revoke them, or give them other flows, on the API Keys page.")

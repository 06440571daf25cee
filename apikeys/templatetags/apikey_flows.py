"""Tags the flow pages use for what concerns keys: the keys deleting a flow would leave reaching no flow.

``{% flow_delete_note flow as note %}`` for one flow; ``{% flow_delete_notes flows %}`` gives each
flow of a list its ``keys_delete_note``.
"""

from django import template

from apikeys.models import ApiKey
from apikeys.services import keys_reaching_only
from flows.models import Flow

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


@register.simple_tag
def flow_delete_notes(flows) -> str:
    """Give each of a list of one owner's flows its ``keys_delete_note`` ("" for none), in two queries.

    A key reaches only flow F when F is the one flow of its list that still exists (as
    ``keys_reaching_only`` decides for one flow). Renders nothing: the flows carry the notes
    (a queryset's cached rows, which the template's loop then reads).
    """
    flows = list(flows)
    if not flows:
        return ""
    owner_id = flows[0].owner_id
    existing = {str(pk) for pk in Flow.objects.filter(owner_id=owner_id).values_list("pk", flat=True)}
    reaching: dict[str, list[ApiKey]] = {}
    for api_key in ApiKey.objects.filter(user_id=owner_id, all_flows=False, revoked_at__isnull=True):
        left = set(api_key.flow_ids) & existing
        if len(left) == 1 and not api_key.is_expired:
            reaching.setdefault(left.pop(), []).append(api_key)
    for flow in flows:
        flow.keys_delete_note = delete_note(reaching.get(str(flow.pk), []))
    return ""

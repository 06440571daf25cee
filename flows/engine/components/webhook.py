"""Webhook: the body a webhook call brought (``POST /api/v1/webhook/<flow>``) as Data.

Langflow's ``Webhook`` component reads its ``data`` field (``Payload``), which the webhook
endpoint sets to the raw request body: JSON becomes the Data itself; text that is not JSON is
still accepted, as ``{"payload": <the text>}``, and an empty body is empty Data. A JSON value
that is not an object (a list, a number) is wrapped the same way, since Data is an object.
Nothing is fetched: the body arrived with the request, within WEBHOOK_MAX_BODY_BYTES.
"""

from __future__ import annotations

import json

from ..limits import text_size
from .base import Component, register

# As deep as a request body may nest (core.jsonlimits); a deeper document stays text.
MAX_DEPTH = 64


def _deeper_than(value, limit: int) -> bool:
    level = [value]
    for _ in range(limit):
        level = [child for item in level if isinstance(item, (dict, list))
                 for child in (item.values() if isinstance(item, dict) else item)]
        if not level:
            return False
    return any(isinstance(item, (dict, list)) for item in level)


@register("Webhook")
class Webhook(Component):
    outputs = {"output_data": "build_data"}
    # The field the webhook endpoint fills, even in an export that does not list it.
    extra_fields = frozenset({"data"})

    def build_data(self) -> dict:
        body = self.text("data")
        if not body.strip():
            return {}
        if text_size(body) > self.value_room():
            raise self.too_large()
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return {"payload": body}
        if _deeper_than(value, MAX_DEPTH):
            return {"payload": body}
        return value if isinstance(value, dict) else {"payload": value}

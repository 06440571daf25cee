"""Current Date: the date and time now in a timezone (the tool an Agent adds with
``add_current_date_tool``)."""

from __future__ import annotations

import datetime
import zoneinfo

from .base import Component, register

MAX_TIMEZONE_CHARS = 64


@register("CurrentDate")
class CurrentDate(Component):
    outputs = {"current_date": "get_current_date"}
    tool_outputs = {"get_current_date": "current_date"}

    def get_current_date(self):
        name = self.text("timezone", "UTC").strip() or "UTC"
        try:
            if len(name) > MAX_TIMEZONE_CHARS:
                raise ValueError(name)
            zone = zoneinfo.ZoneInfo(name)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            raise self.fail("timezone", "is not a known timezone (e.g. UTC, Europe/Paris, America/New_York)") from None
        now = datetime.datetime.now(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
        return self.message(f"Current date and time in {name}: {now}", sender="Machine", sender_name="AI")

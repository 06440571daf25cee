"""DRF's throttle-rate syntax, checked where rates are written (settings, the admin).

Plain Python, so settings.py can use it before the apps load.
"""

import re

RATE_PATTERN = re.compile(r"[1-9][0-9]{0,8}/(s|sec|m|min|h|hour|d|day)")
RATE_HELP = "Write a rate like 100/min, 10/s, 5000/hour or 100000/day."


def is_valid_rate(value: str) -> bool:
    return bool(RATE_PATTERN.fullmatch(value))

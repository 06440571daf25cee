"""Langflow's own exported flows, kept in tests/fixtures/langflow/ so the suite needs nothing outside the repository."""

import json
from pathlib import Path

EXPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "langflow"


def load_export(name: str) -> dict:
    return json.loads((EXPORTS / f"{name}.json").read_text())

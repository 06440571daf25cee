"""Langflow's own exported flows (shared/fixtures/langflow/, which lies beside the repository here and in CI)."""

import json
from pathlib import Path

EXPORTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "langflow"


def load_export(name: str) -> dict:
    return json.loads((EXPORTS / f"{name}.json").read_text())

"""Package boundaries (README "Architecture"): dependencies between our packages run one way."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"core", "users", "flows", "apikeys", "files", "variables", "knowledge", "webhooks", "langflow_site"}
# Each package may import only these of ours (besides itself). The site package wires them all.
ALLOWED = {
    "core": set(),
    "users": {"core"},
    "flows": {"core", "users", "files", "variables", "knowledge"},
    "files": {"core", "users"},
    "variables": {"core", "users"},
    "knowledge": {"core", "users", "files"},
    "apikeys": {"core", "users", "flows"},
    "webhooks": {"core", "users", "flows"},
}


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in OURS and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", sorted(name for name in ALLOWED if (ROOT / name).is_dir()))
def test_a_package_imports_only_the_packages_below_it(package):
    imported = _imports(package)
    assert {name: files for name, files in imported.items() if name not in ALLOWED[package]} == {}


def test_the_settings_import_nothing_of_ours_but_the_data_directory():
    tree = ast.parse((ROOT / "langflow_site" / "settings.py").read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {name for name in modules if name.split(".")[0] in OURS} == {"langflow_site.datadir"}

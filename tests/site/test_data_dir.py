"""DATA_DIR and the SQLite files are the owner's only, from the very first start, whatever the umask."""

import base64
import json
import os
import stat
import subprocess
import sys

import pytest

from tests.harness.server import ROOT, site_env

# Migrates a brand-new site (with the default cache, so `migrate` creates its table), then reports
# the modes while the connection (and so -wal and -shm) is open.
REPORT = """
import json, os, stat
from django.conf import settings
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM langflow_cache")
name = settings.DATABASES["default"]["NAME"]
paths = {"data_dir": str(settings.DATA_DIR), "db": name, "wal": name + "-wal", "shm": name + "-shm",
         "secret_key": str(settings.DATA_DIR / "secret_key")}
print(json.dumps({key: stat.S_IMODE(os.stat(path).st_mode) for key, path in paths.items()}))
"""


def _first_start(data_dir, *, umask: int) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", REPORT], cwd=ROOT, env=site_env(data_dir, CACHE_URL=""),
        capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.umask(umask),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_first_start_makes_data_dir_0700_and_the_database_files_0600(tmp_path, umask):
    modes = _first_start(tmp_path / "new" / "data", umask=umask)
    assert modes == {"data_dir": 0o700, "db": 0o600, "wal": 0o600, "shm": 0o600, "secret_key": 0o600}


def test_a_start_tightens_what_an_older_version_left_readable(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"):
        (data_dir / name).touch()
        (data_dir / name).chmod(0o644)
    modes = _first_start(data_dir, umask=0o022)
    assert modes["data_dir"] == 0o700 and {modes["db"], modes["wal"], modes["shm"]} == {0o600}
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700


# Imports the settings alone, as a tool or a typo'd entry point would, then lists what it loaded.
IMPORT_SETTINGS_ONLY = """
import json, sys
import langflow_site.settings
apps = {"apikeys", "flows", "users", "core", "files", "variables"}
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in apps)))
"""


def test_importing_the_settings_writes_no_file_and_imports_no_app_module(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = site_env(data_dir, SECRET_KEY="s" * 50, API_KEY_PEPPERS="1:" + "p" * 40,
                   VARIABLE_ENCRYPTION_KEYS="1:" + base64.urlsafe_b64encode(b"k" * 32).decode())
    result = subprocess.run([sys.executable, "-c", IMPORT_SETTINGS_ONLY], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == []
    assert list(data_dir.iterdir()) == []


def test_settings_without_their_generated_secret_say_how_to_start(tmp_path):
    result = subprocess.run([sys.executable, "-c", "import langflow_site.settings"], cwd=ROOT,
                            env=site_env(tmp_path / "data"), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "secret_key is missing: start the site through manage.py" in result.stderr
    assert not (tmp_path / "data").exists()

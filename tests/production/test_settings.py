"""Production settings: the README's configuration passes `check --deploy`, HTTPS works behind a proxy."""

import json
import re
import subprocess

import pytest
from django.db import connection

from tests.harness.server import PYTHON, ROOT, site_env

pytestmark = pytest.mark.django_db

README = ROOT / "README.md"


def readme_production_env() -> dict[str, str]:
    """Return the variables of the README's production example (the block after "## Production")."""
    text = README.read_text()
    section = text.split("## Production", 1)[1]
    block = re.search(r"```(?:bash|sh|dotenv)?\n(.*?)```", section, re.S).group(1)
    pairs = {}
    for line in block.splitlines():
        line = line.strip().removeprefix("export ").strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            pairs[name] = value.strip("'\"")
    return pairs


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def settings_under(tmp_path, **variables: str) -> dict:
    """Return the database and security settings a fresh process computes from ``variables``."""
    code = (
        "import json; from django.conf import settings as s; "
        "db = s.DATABASES['default']; "
        "print(json.dumps({'db': {k: db.get(k) for k in ('ENGINE', 'CONN_MAX_AGE', 'CONN_HEALTH_CHECKS', 'OPTIONS')}, "
        "'proxy': s.SECURE_PROXY_SSL_HEADER, 'hsts': s.SECURE_HSTS_SECONDS, 'redirect': s.SECURE_SSL_REDIRECT, "
        "'bench': s.BENCH_ENDPOINTS, 'cookies': [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE], "
        "'db_threads': s.DB_THREADS}))"
    )
    result = run_manage(site_env(tmp_path, **variables), "shell", "-v", "0", "-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_readme_production_settings_pass_the_deploy_check_with_no_warning(tmp_path):
    variables = readme_production_env()
    assert {"DATABASE_URL", "CACHE_URL", "SECRET_KEY", "API_KEY_PEPPERS", "SECURE_HSTS_SECONDS"} <= set(variables)
    result = run_manage(site_env(tmp_path, **variables), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_deploy_check_fails_on_the_local_defaults(tmp_path):
    result = run_manage(site_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for check_id in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check_id in result.stderr


def test_deploy_check_warns_when_servers_sharing_a_database_would_not_share_secrets(tmp_path):
    variables = {**readme_production_env()}
    for name in ("SECRET_KEY", "API_KEY_PEPPERS", "CACHE_URL"):
        variables.pop(name)
    result = run_manage(site_env(tmp_path, **variables), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for check_id in ("langflow_site.W001", "langflow_site.W002"):
        assert check_id in result.stderr
    assert "langflow_site.W003" not in result.stderr  # without CACHE_URL the cache is the shared database's
    per_process = run_manage(site_env(tmp_path, **variables, CACHE_URL="locmemcache://"),
                             "check", "--deploy", "--fail-level", "WARNING")
    assert "langflow_site.W003" in per_process.stderr


def test_postgresql_connections_come_from_a_bounded_pool_with_health_checks(tmp_path):
    computed = settings_under(tmp_path, DATABASE_URL="postgres://app:secret@db.invalid:5432/langflow", DB_POOL_SIZE="5")
    assert computed["db"]["ENGINE"] == "django.db.backends.postgresql"
    assert computed["db"]["CONN_MAX_AGE"] == 0  # back to the pool after each request
    assert computed["db"]["CONN_HEALTH_CHECKS"] is True
    assert computed["db"]["OPTIONS"]["pool"]["max_size"] == 5
    assert computed["db_threads"] == 5  # a database thread per pooled connection


def test_sqlite_gets_one_database_thread_unless_told_otherwise(tmp_path):
    assert settings_under(tmp_path)["db_threads"] == 1
    assert settings_under(tmp_path, DB_THREADS="3")["db_threads"] == 3


@pytest.mark.parametrize("variables", [{"DB_THREADS": "0"},
                                       {"DATABASE_URL": "postgres://app:secret@db.invalid:5432/langflow",
                                        "DB_POOL_SIZE": "4", "DB_THREADS": "5"}])
def test_database_threads_out_of_bounds_stop_the_start(tmp_path, variables):
    result = run_manage(site_env(tmp_path, **variables), "check")
    assert result.returncode != 0
    assert "DB_THREADS must be" in result.stderr


def test_sqlite_is_tuned_for_concurrent_writers(tmp_path):
    options = settings_under(tmp_path)["db"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 5
    assert "journal_mode=WAL" in options["init_command"]


def test_the_sqlite_connection_really_runs_in_wal_mode_with_a_busy_timeout():
    if connection.vendor != "sqlite":
        pytest.skip("checks the SQLite connection; this run uses " + connection.vendor)
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
        assert cursor.execute("PRAGMA mmap_size").fetchone()[0] == 256 * 1024 * 1024  # reads without read() calls


def test_the_sqlite_memory_map_can_be_sized_or_turned_off(tmp_path):
    assert "mmap_size=0;" in settings_under(tmp_path, SQLITE_MMAP_SIZE="0")["db"]["OPTIONS"]["init_command"]


def test_bench_endpoints_are_off_unless_asked_for(tmp_path):
    assert settings_under(tmp_path)["bench"] is False
    assert settings_under(tmp_path, BENCH_ENDPOINTS="1")["bench"] is True


def test_ceiling_view_is_not_reachable_in_normal_production(client):
    assert client.post("/api/v1/bench/ceiling", {}, content_type="application/json").status_code == 404
    assert client.get("/api/v1/bench/ceiling").status_code == 404


def test_ceiling_view_is_mounted_only_with_bench_endpoints_on(tmp_path):
    code = "from django.urls import resolve; print(resolve('/api/v1/bench/ceiling').url_name)"
    on = run_manage(site_env(tmp_path, BENCH_ENDPOINTS="1"), "shell", "-c", code)
    assert on.returncode == 0 and on.stdout.strip().splitlines()[-1] == "bench-ceiling"
    off = run_manage(site_env(tmp_path), "shell", "-c", code)
    assert off.returncode != 0 and "Resolver404" in off.stderr


@pytest.fixture
def https_behind_proxy(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True


def test_plain_http_is_redirected_to_https(client, https_behind_proxy):
    response = client.get("/api/v1/users/whoami")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/v1/users/whoami"


def test_https_terminated_at_the_proxy_is_served_with_hsts(client, https_behind_proxy):
    response = client.get("/api/v1/users/whoami", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 403  # reached the API: no key given
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_load_balancer_health_probe_over_http_is_not_redirected(client, https_behind_proxy):
    assert client.get("/health").status_code == 200


def test_secure_cookies_follow_the_environment(tmp_path):
    assert settings_under(tmp_path)["cookies"] == [False, False]
    assert settings_under(tmp_path, SESSION_COOKIE_SECURE="true", CSRF_COOKIE_SECURE="true")["cookies"] == [True, True]

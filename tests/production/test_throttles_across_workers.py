"""Every documented limit holds exactly on the real server with 2 workers and the default cache.

The default cache is a table of the site's database (no CACHE_URL), so whichever worker answers,
the count is the same: with an in-process cache the audit found 37 failed keys checked before the
first 429 (documented: 20 a minute) and a key limited to 5/min served 10. Requests are sent from
several threads at once, on new connections, so both workers answer and race on the counters.
Each test names its own client address (the proxy header from the trusted loopback), so the
tests share one server without sharing a count.
"""

import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from apikeys import crypto
from tests.harness.server import AppServer, manage, prepare_site, request, site_env

pytestmark = pytest.mark.own_site

WHOAMI = "/api/v1/users/whoami"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("throttles")
    env = site_env(
        root / "data",
        STATIC_ROOT=str(root / "static"),  # the sign-in pages need collected static files
        CACHE_URL="",  # the default: the database cache
        TRUSTED_PROXIES="127.0.0.1",
        API_KEY_FAILED_AUTH_RATE="20/min",
        API_KEY_LEAK_REPORT_RATE="3/hour",
        LOGIN_THROTTLE_FAILURES="5",
    )
    raw_key = prepare_site(env)
    manage(env, "collectstatic", "--noinput", "-v", "0")
    limited = manage(env, "createapikey", "langflow", "--name", "limited", "--rate-limit", "5/min").strip()
    with AppServer(env, workers=2) as running:
        assert len(running.worker_pids()) == 2
        yield running, env, raw_key, limited


def _concurrently(count, send):
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: send(), range(count)))


def _from(address, **headers):
    return {"X-Forwarded-For": address, **headers}


def test_the_21st_failed_key_a_minute_is_429_whichever_worker_answers(server):
    app, env, raw_key, _limited = server
    address = "198.51.100.21"
    wrong = crypto.build_key("Q" * 12, "s" * 32)
    replies = _concurrently(40, lambda: request("GET", app.url(WHOAMI), headers=_from(address, **{"x-api-key": wrong})))
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [403] * 20 + [429] * 20
    assert all(0 < int(reply.headers["retry-after"]) <= 60 for reply in replies if reply.status == 429)
    # While the address is over its limit even the right key is refused; another address is not slowed.
    assert request("GET", app.url(WHOAMI), headers=_from(address, **{"x-api-key": raw_key})).status == 429
    assert request("GET", app.url(WHOAMI), headers=_from("198.51.100.22", **{"x-api-key": raw_key})).status == 200
    logged = manage(env, "shell", "-v", "0", "-c", (
        "from apikeys.models import ApiKeyEvent; "
        f"print(ApiKeyEvent.objects.filter(kind='auth_failed', client_ip='{address}').count())"
    )).strip().splitlines()[-1]
    assert logged == "20"  # the throttle bounds the audit lines exactly too


def test_a_key_limited_to_5_a_minute_serves_5(server):
    app, _env, _raw_key, limited = server
    replies = _concurrently(12, lambda: request("GET", app.url(WHOAMI), headers=_from("198.51.100.5", **{"x-api-key": limited})))
    assert sorted(reply.status for reply in replies) == [200] * 5 + [429] * 7
    assert all(0 < int(reply.headers["retry-after"]) <= 60 for reply in replies if reply.status == 429)


def test_leak_reports_are_limited_per_address_across_workers(server):
    app, *_ = server
    body = json.dumps({"api_key": crypto.build_key("L" * 12, "s" * 32)}).encode()
    replies = _concurrently(8, lambda: request("POST", app.url("/api/v1/api_key/revoke-leaked"), body=body,
                                               headers=_from("198.51.100.30", **{"Content-Type": "application/json"})))
    assert sorted(reply.status for reply in replies) == [200] * 3 + [429] * 5


def _sign_in(app, path, address, password):
    page = request("GET", app.url(path), headers=_from(address))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.body.decode()).group(1)
    cookie = page.headers["set-cookie"].split(";")[0]
    body = f"csrfmiddlewaretoken={token}&username=langflow&password={password}".encode()
    return request("POST", app.url(path), body=body, headers=_from(
        address, Cookie=cookie, **{"Content-Type": "application/x-www-form-urlencoded"}))


def test_five_failed_sign_ins_lock_the_sign_in_page_and_the_admin_whichever_worker_answers(server):
    app, *_ = server
    address = "198.51.100.50"
    statuses = [_sign_in(app, "/login/", address, "wrong").status for _ in range(5)]
    assert statuses == [400] * 4 + [429]
    assert _sign_in(app, "/admin/login/", address, "langflow").status == 429
    assert _sign_in(app, "/login/", address, "langflow").status == 429
    assert _sign_in(app, "/admin/login/", "198.51.100.51", "langflow").status == 302


def test_the_running_sites_database_files_are_the_owners_only(server):
    _app, env, *_ = server
    data_dir = Path(env["DATA_DIR"])
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    files = [data_dir / name for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm")]
    assert {stat.S_IMODE(os.stat(path).st_mode) for path in files} == {0o600}

"""Fixtures for the flows tests: Langflow's exported flows, keys, and a real model server on loopback."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from flows import services
from tests.flows.arxiv_stub import arxiv  # noqa: F401  (arXiv's API, served by that page server)
from tests.flows.starter_support import saas_database, scripted  # noqa: F401  (the starters' model and database)
from tests.flows.web_stubs import allowed_web, web  # noqa: F401  (a page server and search stub on loopback)
from tests.harness.loopback import LoopbackHTTPServer

# Real Langflow exports, copied into the repository so the suite needs nothing beside it.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "langflow"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def export():
    """Return a fresh copy of a Langflow export from tests/fixtures/langflow/."""
    return load_fixture


@pytest.fixture
def key(user, make_key):
    return make_key(user)[1]


@pytest.fixture
def other_key(other_user, make_key):
    return make_key(other_user)[1]


@pytest.fixture
def echo_flow(user):
    [flow] = services.import_flows(user=user, payload=load_fixture("echo.json"))
    return flow


@pytest.fixture
def prompting_flow(user):
    [flow] = services.import_flows(user=user, payload=load_fixture("basic_prompting.json"))
    return flow


def closed_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def model_settings(settings):
    """No test ever reaches a real model server: the default base URL refuses connections."""
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{closed_port()}/v1"
    settings.OPENAI_API_KEY = "server-side-key"
    settings.OPENAI_MODEL = "test-model"
    settings.OPENAI_TIMEOUT = 5.0
    settings.MODEL_ALLOWED_BASE_URLS = []
    return settings


class FakeModelServer(LoopbackHTTPServer):
    """An OpenAI-compatible ``/v1/chat/completions`` on loopback that records what it receives.

    ``mode``: "ok" (answer ``reply``, or stream it as ``tokens`` when asked to stream), "500",
    "401" (fail with that status), "hang" (never answer), "garbage" (answer non-JSON),
    "redirect" (answer 307 to ``redirect_to``).
    """

    def __init__(self):
        self.requests: list[dict] = []
        self.mode = "ok"
        self.reply = "Hello from the model"
        self.tokens = ["Hel", "lo ", "from ", "the ", "model"]
        self.release = threading.Event()
        self.redirect_to = ""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                server.requests.append({"path": self.path, "headers": dict(self.headers), "json": body})
                if server.mode == "hang":
                    server.release.wait(30)
                    return
                if server.mode in {"500", "401"}:
                    self._send(int(server.mode), {"error": {"message": "failure sk-secret-upstream"}})
                    return
                if server.mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", server.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.mode == "garbage":
                    self._send(200, None, raw=b"<html>not json</html>")
                    return
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "no such route"}})
                    return
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for token in server.tokens:
                        chunk = {"choices": [{"index": 0, "delta": {"content": token}}]}
                        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                self._send(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "model": body.get("model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": server.reply},
                                 "finish_reason": "stop"}],
                })

            def _send(self, status, payload, raw=None):
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def last(self) -> dict:
        return self.requests[-1]

    def __exit__(self, *exc):
        self.release.set()
        super().__exit__(*exc)


@pytest.fixture
def model_server(settings):
    """A running fake model server, configured as the server's OPENAI_BASE_URL."""
    with FakeModelServer() as server:
        settings.OPENAI_BASE_URL = server.base_url
        yield server


@pytest.fixture
def second_model_server(settings):
    """Another fake model server, which flows may choose as their base URL: it is on loopback,
    so it is listed in MODEL_ALLOWED_BASE_URLS."""
    with FakeModelServer() as server:
        settings.MODEL_ALLOWED_BASE_URLS = [*settings.MODEL_ALLOWED_BASE_URLS, server.base_url]
        yield server

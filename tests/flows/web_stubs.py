"""Local stand-ins for the web: a page server and a SearXNG-compatible search endpoint on loopback.

``FakeWeb`` serves ``pages`` (path -> ``Page``) and, at ``/search``, a SearXNG JSON answer built
from ``results`` (or ``search_answer`` as raw bytes). It records each request (path, query,
headers). Tests allow it with ``URL_ALLOWED_PREFIXES`` (``allowed_web``) and point
``WEB_SEARCH_URL`` at ``search_url``. The fixtures are shared through tests/flows/conftest.py.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.harness.loopback import LoopbackHTTPServer


@dataclass
class Page:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    gzip: bool = False
    hang: bool = False  # send the headers, then nothing until the server stops
    chunks: int = 0  # send the body in this many chunks without a Content-Length


def html(title: str, body: str, *, lang: str = "en") -> str:
    return f"<!doctype html><html lang='{lang}'><head><title>{title}</title></head><body>{body}</body></html>"


class FakeWeb(LoopbackHTTPServer):
    def __init__(self):
        self.pages: dict[str, Page] = {}
        self.results: list[dict] = []
        self.search_answer: bytes | None = None
        self.search_status = 200
        self.requests: list[dict] = []
        self.release = threading.Event()
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                web.requests.append({"path": parts.path, "query": parse_qs(parts.query), "headers": dict(self.headers)})
                if parts.path == "/search":
                    body = web.search_answer if web.search_answer is not None else json.dumps(
                        {"query": parse_qs(parts.query).get("q", [""])[0], "results": web.results}).encode()
                    page = Page(body=body, status=web.search_status, content_type="application/json")
                else:
                    page = web.pages.get(parts.path) or Page(body="<p>not found</p>", status=404)
                self._send(page)

            def _send(self, page: Page):
                body = page.body.encode() if isinstance(page.body, str) else page.body
                if page.gzip:
                    body = gzip.compress(body)
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                if page.gzip:
                    self.send_header("Content-Encoding", "gzip")
                for name, value in page.headers.items():
                    self.send_header(name, value)
                if page.hang:
                    self.send_header("Content-Length", str(len(body) + 1))
                    self.end_headers()
                    self.wfile.flush()
                    web.release.wait(30)
                    return
                if page.chunks:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    size = max(1, len(body) // page.chunks)
                    try:
                        for start in range(0, len(body), size):
                            self.wfile.write(body[start:start + size])
                            self.wfile.flush()
                            time.sleep(0.001)
                    except OSError:
                        pass  # the client stopped reading: that is the point
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    @property
    def search_url(self) -> str:
        return self.url("/search")

    def paths(self) -> list[str]:
        return [request["path"] for request in self.requests]

    def __exit__(self, *exc):
        self.release.set()
        super().__exit__(*exc)


@pytest.fixture
def web(settings):
    """A running FakeWeb; nothing allowed yet (loopback is refused as any private address)."""
    settings.URL_ALLOWED_PREFIXES = []
    settings.WEB_SEARCH_URL = ""
    with FakeWeb() as server:
        yield server


@pytest.fixture
def allowed_web(web, settings):
    """The FakeWeb, listed by the operator in URL_ALLOWED_PREFIXES."""
    settings.URL_ALLOWED_PREFIXES = [web.origin]
    return web

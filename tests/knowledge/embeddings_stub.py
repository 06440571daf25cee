"""A deterministic OpenAI-compatible ``/v1/embeddings`` on loopback (aiohttp, in a thread of its own).

A text's vector counts its words, each hashed into one of ``DIMENSIONS`` slots: texts sharing
words point the same way, so similarity ranks them as a real model roughly would, and the same
text always gets the same vector. ``mode``: "ok", "500" (fail with HTTP 500), "short" (answer one
vector fewer than asked), "wide" (vectors of ``wide_dimensions`` numbers). Every request's body
and Authorization header are recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading

from aiohttp import web

DIMENSIONS = 64
_WORD = re.compile(r"\w+")


def vector_of(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        vector[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % dimensions] += 1.0
    return vector


class EmbeddingsStub:
    def __init__(self):
        self.mode = "ok"
        self.wide_dimensions = DIMENSIONS * 2
        self.requests: list[dict] = []
        self.authorizations: list[str | None] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.authorizations.append(request.headers.get("Authorization"))
        if self.mode == "500":
            return web.Response(status=500, text="boom")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = self.wide_dimensions if self.mode == "wide" else DIMENSIONS
        data = [{"object": "embedding", "index": index, "embedding": vector_of(text, dimensions)}
                for index, text in enumerate(inputs)]
        if self.mode == "short":
            data = data[:-1]
        data.reverse()  # "index" says where each goes, as a server may answer out of order
        return web.json_response({"object": "list", "data": data, "model": body.get("model")})

    def _serve(self):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._embeddings)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._started.set()
        self.loop.run_forever()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def texts(self) -> list[str]:
        return [text for body in self.requests for text in body["input"]]

    def __enter__(self):
        self.thread.start()
        self._started.wait(5)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

"""A lean OpenAI-compatible chat-completions stub for the I/O-bound benchmark and the fault tests.

One asyncio process, no thread per connection and no framework, so that a thousand open streams
cost the shared two cores almost nothing and the benchmark measures the server, not the stub.
HTTP/1.1 with keep-alive is parsed here by hand (the requests come from our own model client).

    python -m tests.harness.modelstub --port 8001 --delay 1          # serve until killed
    with ModelStub(delay=1) as stub: ... stub.base_url ...    # a subprocess on a free port

``POST /v1/chat/completions`` answers after ``delay`` seconds with the last user message prefixed
by ``stub: `` (or ``answer_bytes`` bytes); with ``"stream": true`` it sends ``chunks`` SSE lines
spread evenly over ``stream_seconds``, then ``data: [DONE]``. Each default can be overridden per
request in the ``model`` field, e.g. ``"stub,delay=0,stream_seconds=10,chunks=20"``, so a test picks
the behaviour with a run tweak. Fault behaviours: ``trickle=S`` (after the headers, one body byte
every S seconds, forever), ``status=N`` (answer HTTP N). ``GET /stats`` counts requests, open
connections, completed answers and answers whose client went away first; ``POST /stats/reset``
zeroes the counters. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024
READ_SIZE = 64 * 1024

REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 413: "Payload Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}

# name: (parse, check, description of valid values)
KNOBS = {
    "delay": (float, lambda v: 0 <= v <= 3600, "seconds, 0 to 3600"),
    "stream_seconds": (float, lambda v: 0 <= v <= 3600, "seconds, 0 to 3600"),
    "chunks": (int, lambda v: 1 <= v <= 100_000, "an integer, 1 to 100000"),
    "trickle": (float, lambda v: 0 <= v <= 3600, "seconds, 0 (off) to 3600"),
    "answer_bytes": (int, lambda v: 0 <= v <= 1 << 30, "an integer, 0 (off) to 1 GiB"),
    "status": (int, lambda v: v == 0 or 200 <= v <= 599, "an HTTP status, 200 to 599 (0 = 200)"),
}
DEFAULTS = {"delay": 0.0, "stream_seconds": 0.0, "chunks": 5, "trickle": 0.0, "answer_bytes": 0, "status": 0}


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_knobs(text: str, defaults: dict) -> dict:
    """Return ``defaults`` overridden by the ``key=value`` pairs of a model name like ``stub,delay=1``."""
    knobs = dict(defaults)
    for part in text.split(","):
        part = part.strip()
        if "=" not in part:
            continue  # the model's name itself ("stub", "gpt-4o-mini")
        name, _, raw = part.partition("=")
        name = name.strip()
        if name not in KNOBS:
            raise BadRequest(400, f"unknown stub setting {name!r}; known: {', '.join(KNOBS)}")
        parse, check, valid = KNOBS[name]
        try:
            value = parse(raw.strip())
        except ValueError:
            raise BadRequest(400, f"stub setting {name} must be {valid}") from None
        if isinstance(value, float) and not math.isfinite(value) or not check(value):
            raise BadRequest(400, f"stub setting {name} must be {valid}")
        knobs[name] = value
    return knobs


def last_user_text(messages) -> str:
    """The text of the last user message (a string, or a list of ``{"type": "text"}`` parts)."""
    if not isinstance(messages, list):
        raise BadRequest(400, "messages must be a list")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict)
                               and isinstance(part.get("text"), str))
            return ""
    return ""


def split_evenly(text: str, pieces: int) -> list[str]:
    size = len(text)
    return [text[size * i // pieces:size * (i + 1) // pieces] for i in range(pieces)]


class Stats:
    def __init__(self):
        self.reset()
        self.open_connections = 0
        self.in_flight = 0

    def reset(self) -> None:
        self.requests = 0            # chat-completion requests received
        self.completed = 0           # answers sent to the end
        self.disconnected = 0        # answers whose client went away before the end
        self.bad_requests = 0
        self.connections = 0         # connections accepted
        self.max_open_connections = getattr(self, "open_connections", 0)
        self.max_in_flight = getattr(self, "in_flight", 0)

    def as_dict(self) -> dict:
        return {
            "requests": self.requests, "completed": self.completed, "disconnected": self.disconnected,
            "bad_requests": self.bad_requests, "connections": self.connections,
            "open_connections": self.open_connections, "max_open_connections": self.max_open_connections,
            "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
        }


class Request:
    __slots__ = ("method", "path", "version", "headers", "body")

    def __init__(self, method: str, path: str, version: str, headers: dict[str, str], body: bytes):
        self.method, self.path, self.version, self.headers, self.body = method, path, version, headers, body

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


class Disconnected(Exception):
    """The client went away before the answer ended."""


class StubServer:
    """The stub's connections: one coroutine per connection, a watcher while an answer is sent."""

    def __init__(self, defaults: dict):
        self.defaults = dict(defaults)
        self.stats = Stats()
        self.counter = 0

    # ---- HTTP/1.1 -------------------------------------------------------------------------

    async def read_request(self, reader: asyncio.StreamReader, buffer: bytearray) -> Request | None:
        """Parse one request from ``buffer`` (reading more as needed); None when the client closed."""
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buffer) > MAX_HEAD:
                raise BadRequest(431, "request head too large")
            data = await reader.read(READ_SIZE)
            if not data:
                return None
            buffer += data
        head = bytes(buffer[:end]).decode("latin-1")
        del buffer[:end + 4]
        request_line, *header_lines = head.split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(400, "malformed request line")
        method, path, version = parts
        headers = {}
        for line in header_lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise BadRequest(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self.read_chunked(reader, buffer)
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise BadRequest(400, "bad Content-Length") from None
            if length < 0:
                raise BadRequest(400, "bad Content-Length")
            if length > MAX_BODY:
                raise BadRequest(413, "request body too large")
            body = await self.read_exactly(reader, buffer, length)
        return Request(method, path, version, headers, body)

    @staticmethod
    async def read_exactly(reader, buffer: bytearray, length: int) -> bytes:
        while len(buffer) < length:
            data = await reader.read(READ_SIZE)
            if not data:
                raise Disconnected
            buffer += data
        body = bytes(buffer[:length])
        del buffer[:length]
        return body

    async def read_chunked(self, reader, buffer: bytearray) -> bytes:
        body = bytearray()
        while True:
            while (end := buffer.find(b"\r\n")) < 0:
                if len(buffer) > MAX_HEAD:
                    raise BadRequest(400, "bad chunk size line")
                data = await reader.read(READ_SIZE)
                if not data:
                    raise Disconnected
                buffer += data
            try:
                size = int(bytes(buffer[:end]).split(b";")[0], 16)
            except ValueError:
                raise BadRequest(400, "bad chunk size") from None
            del buffer[:end + 2]
            if size == 0:
                # trailers (none expected) up to the blank line
                while (end := buffer.find(b"\r\n")) != 0:
                    if end > 0:
                        del buffer[:end + 2]
                        continue
                    data = await reader.read(READ_SIZE)
                    if not data:
                        raise Disconnected
                    buffer += data
                del buffer[:2]
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise BadRequest(413, "request body too large")
            body += await self.read_exactly(reader, buffer, size + 2)
            del body[-2:]

    @staticmethod
    def head(status: int, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", *(f"{k}: {v}" for k, v in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def json_answer(self, status: int, payload, keep_alive: bool) -> bytes:
        body = json.dumps(payload).encode()
        return self.head(status, [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            ("Connection", "keep-alive" if keep_alive else "close"),
        ]) + body

    @staticmethod
    async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
        if writer.is_closing():
            raise Disconnected
        writer.write(data)
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            raise Disconnected from None

    # ---- connections ----------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats = self.stats
        stats.connections += 1
        stats.open_connections += 1
        stats.max_open_connections = max(stats.max_open_connections, stats.open_connections)
        buffer = bytearray()
        try:
            while True:
                try:
                    request = await self.read_request(reader, buffer)
                except BadRequest as bad:
                    stats.bad_requests += 1
                    writer.write(self.json_answer(bad.status, {"error": {"message": bad.message, "type": "stub"}}, False))
                    await writer.drain()
                    return
                if request is None:
                    return
                if not await self.dispatch(request, reader, writer, buffer):
                    return
        except (Disconnected, ConnectionError, OSError, asyncio.IncompleteReadError):
            return
        except Exception as error:  # never let one connection take the stub down
            print(f"modelstub: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        finally:
            stats.open_connections -= 1
            writer.close()

    async def dispatch(self, request: Request, reader, writer, buffer: bytearray) -> bool:
        """Answer one request; return whether the connection stays open."""
        path = request.path.split("?", 1)[0]
        keep_alive = request.keep_alive
        if path.endswith("/chat/completions"):
            if request.method != "POST":
                await self.send(writer, self.json_answer(405, {"error": {"message": "POST only"}}, keep_alive))
                return keep_alive
            return await self.chat(request, reader, writer, buffer)
        if path == "/stats" and request.method == "GET":
            await self.send(writer, self.json_answer(200, self.stats.as_dict(), keep_alive))
        elif path == "/stats/reset" and request.method == "POST":
            self.stats.reset()
            await self.send(writer, self.json_answer(200, self.stats.as_dict(), keep_alive))
        elif path in ("/health", "/v1/models") and request.method == "GET":
            await self.send(writer, self.json_answer(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]},
                                                     keep_alive))
        else:
            await self.send(writer, self.json_answer(404, {"error": {"message": f"no route {path}"}}, keep_alive))
        return keep_alive

    async def chat(self, request: Request, reader, writer, buffer: bytearray) -> bool:
        stats = self.stats
        stats.requests += 1
        try:
            body = json.loads(request.body)
            if not isinstance(body, dict):
                raise BadRequest(400, "the body must be a JSON object")
            model = body.get("model", "stub")
            if not isinstance(model, str):
                raise BadRequest(400, "model must be a string")
            knobs = parse_knobs(model, self.defaults)
            text = last_user_text(body.get("messages", []))
        except (ValueError, UnicodeDecodeError):
            stats.bad_requests += 1
            await self.send(writer, self.json_answer(400, {"error": {"message": "the body is not JSON"}}, request.keep_alive))
            return request.keep_alive
        except BadRequest as bad:
            stats.bad_requests += 1
            await self.send(writer, self.json_answer(bad.status, {"error": {"message": bad.message}}, request.keep_alive))
            return request.keep_alive

        # While the answer is prepared and sent, watch the connection: a client that closes it
        # is noticed at once (a pipelined request is kept for later).
        gone = asyncio.Event()

        async def watch():
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    gone.set()
                    return
                buffer.extend(data)

        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        watcher = asyncio.create_task(watch())
        answer = asyncio.create_task(self.answer(writer, model, bool(body.get("stream")), text, knobs, request.keep_alive))
        try:
            await asyncio.wait({answer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not answer.done():
                answer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Disconnected):
                    await answer
                stats.disconnected += 1
                return False
            try:
                answer.result()
            except Disconnected:
                stats.disconnected += 1
                return False
            stats.completed += 1
            return request.keep_alive and not gone.is_set()
        finally:
            stats.in_flight -= 1
            for task in (answer, watcher):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task

    async def answer(self, writer, model: str, stream: bool, text: str, knobs: dict, keep_alive: bool) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.counter += 1
        ident = f"chatcmpl-stub-{os.getpid()}-{self.counter}"
        created = int(time.time())
        if knobs["delay"]:
            await asyncio.sleep(knobs["delay"])
        status = knobs["status"] or 200
        if knobs["trickle"]:
            kind = "text/event-stream" if stream else "application/json"
            await self.send(writer, self.head(status, [("Content-Type", kind), ("Content-Length", str(1 << 40))]))
            while True:
                await asyncio.sleep(knobs["trickle"])
                await self.send(writer, b" ")
        if status != 200:
            await self.send(writer, self.json_answer(status, {"error": {"message": f"stub answered {status}", "type": "stub"}},
                                                     keep_alive))
            return
        content = "x" * knobs["answer_bytes"] if knobs["answer_bytes"] else "stub: " + text
        if not stream:
            await self.send(writer, self.json_answer(200, {
                "id": ident, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(text.split()), "completion_tokens": len(content.split()),
                          "total_tokens": len(text.split()) + len(content.split())},
            }, keep_alive))
            return
        await self.send(writer, self.head(200, [
            ("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("Transfer-Encoding", "chunked"),
            ("Connection", "keep-alive" if keep_alive else "close"),
        ]))
        chunks, spread = knobs["chunks"], knobs["stream_seconds"]
        begin = loop.time() if spread else started
        for number, piece in enumerate(split_evenly(content, chunks)):
            if spread:
                wait = begin + spread * (number + 1) / chunks - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            delta = {"role": "assistant", "content": piece} if number == 0 else {"content": piece}
            line = json.dumps({
                "id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if number == chunks - 1 else None}],
            })
            await self.send(writer, sse_chunk(f"data: {line}\n\n".encode()))
        await self.send(writer, sse_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")


def sse_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def raise_open_file_limit() -> None:
    """A thousand streams need a thousand sockets: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(port: int, defaults: dict) -> None:
    stub = StubServer(defaults)
    server = await asyncio.start_server(stub.handle, LOOPBACK, port, backlog=4096, limit=MAX_HEAD)
    actual = server.sockets[0].getsockname()[1]
    print(f"modelstub listening on {LOOPBACK}:{actual}", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    server.close()  # open connections are cancelled as the loop closes


def new_event_loop():
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.modelstub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on the first line)")
    for name in KNOBS:
        parser.add_argument(f"--{name.replace('_', '-')}", default=str(DEFAULTS[name]), help=KNOBS[name][2])
    args = parser.parse_args(argv)
    try:
        defaults = parse_knobs(",".join(f"{name}={getattr(args, name)}" for name in KNOBS), DEFAULTS)
    except BadRequest as bad:
        parser.error(bad.message)
    raise_open_file_limit()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(args.port, defaults))
    return 0


class ModelStub:
    """The stub as a subprocess on a free loopback port: ``with ModelStub(delay=1) as stub: stub.base_url``."""

    def __init__(self, *, log_path: Path | str | None = None, ready_timeout: float = 20, **defaults):
        unknown = set(defaults) - set(KNOBS)
        if unknown:
            raise TypeError(f"unknown stub settings: {', '.join(sorted(unknown))}")
        self.defaults = parse_knobs(",".join(f"{k}={v}" for k, v in defaults.items()), DEFAULTS)
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def start(self) -> ModelStub:
        root = Path(__file__).resolve().parents[2]
        flags = [f"--{name.replace('_', '-')}={value}" for name, value in self.defaults.items()]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.harness.modelstub", "--port", "0", *flags], cwd=root,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        try:
            deadline = time.monotonic() + self.ready_timeout
            ready, _, _ = select.select([self.process.stdout], [], [], self.ready_timeout)
            line = self.process.stdout.readline().decode() if ready else ""
            if not line.startswith("modelstub listening on "):
                raise RuntimeError(f"the model stub did not start (exit code {self.process.poll()}): {line!r}")
            self.port = int(line.rsplit(":", 1)[1])
            while True:
                try:
                    self.stats()
                    return self
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the model stub does not answer") from None
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def _call(self, method: str, path: str) -> dict:
        import http.client

        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=10)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            return json.loads(response.read())
        finally:
            connection.close()

    def stats(self) -> dict:
        """The stub's counters: requests, open_connections, completed, disconnected, in_flight, ..."""
        return self._call("GET", "/stats")

    def reset(self) -> dict:
        return self._call("POST", "/stats/reset")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if process.stdout:
            process.stdout.close()

    def __enter__(self) -> ModelStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())

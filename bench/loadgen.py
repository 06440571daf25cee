"""A lean asyncio load generator for the I/O-bound benchmark: no thread per connection.

Raw asyncio streams and a minimal HTTP/1.1 client (keep-alive, Content-Length and chunked
bodies), so that a thousand open streams cost the shared two cores little and the figures
measure the server. Three tools, run together from one spec:

* ``closed``: N clients, each sending requests one after another for T seconds (then the
  requests in flight finish); completed count, statuses, errors and latency percentiles.
* ``wave``: N connections opened first, then N requests sent at once; how many completed,
  errors, and the wall time from the first send to the last completion.
* probes: beside either, GET each of a few URLs (with their own headers) every ~50 ms, each on
  its own connection; p50/p99/max latency and non-200 counts per URL.

A streamed request (``"stream": true``) is complete only when its event stream (Langflow's
framing: one JSON object, then a blank line) ended with an ``end`` event; it is an error when
it ends with an ``error`` event or is cut off.

    python -m bench.loadgen < spec.json > result.json

Loopback only; every loop is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit

from tests.harness.modelstub import new_event_loop, raise_open_file_limit

HEAD_LIMIT = 1 << 20
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


class CutOff(Exception):
    """The connection closed before the answer ended."""


class Target:
    """One URL and its headers, encoded once: every request of a load is the same bytes."""

    def __init__(self, url: str, *, method: str = "GET", headers: dict | None = None, body: str | bytes = b""):
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS and not parts.hostname.startswith("127."):
            raise ValueError(f"loopback http:// URLs only, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = body.encode() if isinstance(body, str) else body
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self.method = method


class Answer:
    __slots__ = ("status", "body", "last_event", "first_byte")

    def __init__(self, status: int, body: bytes, last_event: str | None, first_byte: float):
        self.status, self.body, self.last_event, self.first_byte = status, body, last_event, first_byte


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, target: Target):
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.target.host, self.target.port, limit=HEAD_LIMIT)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, *, stream: bool = False, keep_body: bool = False) -> Answer:
        """Send the target's request and read the answer whole; for ``stream``, follow its events."""
        reused = self.writer is not None
        if not reused:
            await self.open()
        self.writer.write(self.target.request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as error:
            self.close()
            if reused and not getattr(error, "partial", b""):
                # The server closed an idle keep-alive connection as we reused it: once more, anew.
                return await self.send(stream=stream, keep_body=keep_body)
            raise CutOff("closed before the answer's head") from None
        reader = self.reader
        first_byte = time.monotonic()
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        version, status = status_line.split(" ", 2)[:2]
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        keep_alive = ("close" not in headers.get("connection", "")) if version == "HTTP/1.1" \
            else "keep-alive" in headers.get("connection", "")
        events = EventReader() if stream else None
        body = bytearray()

        def consume(data: bytes) -> None:
            if events is not None:
                events.feed(data)
                if keep_body:
                    body.extend(data)
            else:
                body.extend(data)

        try:
            if self.target.method == "HEAD" or status in ("204", "304"):
                pass
            elif "chunked" in headers.get("transfer-encoding", ""):
                while True:
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";", 1)[0], 16)
                    if size == 0:
                        while await reader.readuntil(b"\r\n") != b"\r\n":
                            pass  # trailers
                        break
                    chunk = await reader.readexactly(size + 2)
                    consume(chunk[:-2])
            elif "content-length" in headers:
                consume(await reader.readexactly(int(headers["content-length"])))
            else:
                keep_alive = False
                while data := await reader.read(65536):
                    consume(data)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            self.close()
            raise CutOff(f"closed in the middle of the body ({type(error).__name__})") from None
        if not keep_alive:
            self.close()
        last_event = events.finish() if events is not None else None
        return Answer(int(status), bytes(body), last_event, first_byte)


class EventReader:
    """Langflow's stream framing: each event is one JSON object followed by a blank line."""

    __slots__ = ("buffer", "last", "count")

    def __init__(self):
        self.buffer = bytearray()
        self.last: str | None = None
        self.count = 0

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\n\n")) >= 0:
            piece = bytes(self.buffer[:end]).strip()
            del self.buffer[:end + 2]
            if piece:
                self.take(piece)

    def take(self, piece: bytes) -> None:
        self.count += 1
        try:
            event = json.loads(piece)
            self.last = event.get("event") if isinstance(event, dict) else "unreadable"
        except ValueError:
            self.last = "unreadable"

    def finish(self) -> str | None:
        if self.buffer.strip():
            self.take(bytes(self.buffer).strip())  # a last event without its blank line
            self.buffer.clear()
        return self.last


def percentiles(values: list[float]) -> dict:
    """Nearest-rank p50/p90/p99/max of ``values`` (seconds), in milliseconds."""
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))] * 1000, 1)

    return {"p50_ms": rank(50), "p90_ms": rank(90), "p99_ms": rank(99), "max_ms": round(ordered[-1] * 1000, 1)}


class Tally:
    """Outcomes of one load: statuses, error kinds (with a few examples) and latencies."""

    def __init__(self):
        self.statuses: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.examples: list[str] = []
        self.latencies: list[float] = []
        self.first_bytes: list[float] = []
        self.completed = 0
        self.sent = 0
        self.last_completion = 0.0

    def error(self, kind: str, example: str = "") -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {example}"[:300])

    async def one(self, connection: Connection, *, stream: bool, expect: str | None) -> None:
        """Send one request and record its outcome."""
        self.sent += 1
        started = time.monotonic()
        try:
            answer = await connection.send(stream=stream, keep_body=bool(expect))
        except CutOff as cut:
            self.error("cut off", str(cut))
            return
        except (OSError, ValueError) as error:
            connection.close()
            self.error("connection", f"{type(error).__name__}: {error}")
            return
        finished = time.monotonic()
        self.statuses[str(answer.status)] = self.statuses.get(str(answer.status), 0) + 1
        self.first_bytes.append(answer.first_byte - started)
        if answer.status != 200:
            self.error(f"status {answer.status}", answer.body[:200].decode(errors="replace"))
        elif stream and answer.last_event != "end":
            self.error("error event" if answer.last_event == "error" else "stream without end event",
                       f"last event {answer.last_event!r}")
        elif expect and expect.encode() not in answer.body:
            self.error("unexpected answer", answer.body[:200].decode(errors="replace"))
        else:
            self.completed += 1
            self.latencies.append(finished - started)
            self.last_completion = max(self.last_completion, finished)

    def summary(self) -> dict:
        return {
            "sent": self.sent,
            "completed": self.completed,
            "statuses": dict(sorted(self.statuses.items())),
            "errors": dict(sorted(self.errors.items())),
            "error_count": sum(self.errors.values()),
            "error_examples": self.examples,
            "latency": percentiles(self.latencies),
            "first_byte": percentiles(self.first_bytes),
        }


async def closed_loop(url: str, *, clients: int, seconds: float, method: str = "POST", headers: dict | None = None,
                      body: str = "", stream: bool = False, timeout: float = 60, expect: str | None = None) -> dict:
    """N clients, each sending one request after another for ``seconds``; then the ones in flight finish."""
    target = Target(url, method=method, headers=headers, body=body)
    tally = Tally()
    started = time.monotonic()
    deadline = started + seconds

    async def client() -> None:
        connection = Connection(target)
        try:
            while time.monotonic() < deadline:
                try:
                    async with asyncio.timeout(timeout):
                        await tally.one(connection, stream=stream, expect=expect)
                except TimeoutError:
                    connection.close()
                    tally.error("timeout", f"no complete answer within {timeout:g} s")
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = max(tally.last_completion, deadline) - started
    result = tally.summary()
    result.update(kind="closed", clients=clients, seconds=seconds, elapsed=round(elapsed, 3),
                  rate=round(tally.completed / elapsed, 2) if elapsed > 0 else 0.0, stream=stream)
    return result


async def wave(url: str, *, count: int, method: str = "POST", headers: dict | None = None, body: str = "",
               stream: bool = True, limit: float = 120, expect: str | None = None) -> dict:
    """Open ``count`` connections, then send ``count`` requests at once; stop waiting after ``limit`` s."""
    target = Target(url, method=method, headers=headers, body=body)
    tally = Tally()
    connections = [Connection(target) for _ in range(count)]
    gate = asyncio.Semaphore(256)

    async def connect(connection: Connection) -> bool:
        async with gate:
            try:
                await connection.open()
                return True
            except OSError as error:
                tally.error("connect", f"{type(error).__name__}: {error}")
                return False

    connect_started = time.monotonic()
    opened = await asyncio.gather(*(connect(c) for c in connections))
    connect_seconds = time.monotonic() - connect_started
    go = asyncio.Event()
    loop = asyncio.get_running_loop()
    give_up = {"at": 0.0}

    async def send(connection: Connection) -> None:
        await go.wait()
        try:
            async with asyncio.timeout_at(give_up["at"]):
                await tally.one(connection, stream=stream, expect=expect)
        except TimeoutError:
            tally.error("timeout", f"not complete {limit:g} s after the first send")
        finally:
            connection.close()

    tasks = [asyncio.create_task(send(c)) for c, ok in zip(connections, opened, strict=True) if ok]
    await asyncio.sleep(0)  # every task is waiting at the gate
    first_send = time.monotonic()
    give_up["at"] = loop.time() + limit
    go.set()
    await asyncio.gather(*tasks)
    result = tally.summary()
    all_completed = tally.completed == count
    result.update(kind="wave", count=count, stream=stream, limit=limit, connect_seconds=round(connect_seconds, 3),
                  all_completed=all_completed,
                  wall_seconds=round(tally.last_completion - first_send, 3) if all_completed else None,
                  last_completion_seconds=round(tally.last_completion - first_send, 3) if tally.completed else None)
    return result


async def prober(targets: list[dict], stop: asyncio.Event, *, interval: float = 0.05, timeout: float = 10) -> dict:
    """GET each target every ``interval`` s on its own connection until ``stop`` is set."""

    async def probe(spec: dict) -> tuple[str, dict]:
        connection = Connection(Target(spec["url"], method="GET", headers=spec.get("headers")))
        latencies, statuses, errors = [], {}, {}
        expect = spec.get("expect_status", 200)
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    async with asyncio.timeout(timeout):
                        answer = await connection.send()
                    statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
                except TimeoutError:
                    connection.close()
                    errors["timeout"] = errors.get("timeout", 0) + 1
                except (CutOff, OSError, ValueError) as error:
                    connection.close()
                    kind = "cut off" if isinstance(error, CutOff) else "connection"
                    errors[kind] = errors.get(kind, 0) + 1
                latencies.append(time.monotonic() - started)
                next_at = max(next_at + interval, time.monotonic())
                try:
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, next_at - time.monotonic()))
                except TimeoutError:
                    pass
        finally:
            connection.close()
        non_expected = {status: n for status, n in statuses.items() if int(status) != expect}
        return spec["name"], {"count": len(latencies), **percentiles(latencies), "statuses": statuses,
                              "unexpected_statuses": non_expected, "errors": errors,
                              "failures": sum(non_expected.values()) + sum(errors.values())}

    return dict(await asyncio.gather(*(probe(spec) for spec in targets)))


async def run(spec: dict) -> dict:
    """Run ``spec["load"]`` (closed or wave) with ``spec["probes"]`` beside it; return the results."""
    load = dict(spec["load"])
    kind = load.pop("kind")
    stop = asyncio.Event()
    probes = asyncio.create_task(prober(spec.get("probes", []), stop, interval=spec.get("probe_interval", 0.05),
                                        timeout=spec.get("probe_timeout", 10)))
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        if kind == "closed":
            result = await closed_loop(**load)
        elif kind == "wave":
            result = await wave(**load)
        else:
            raise ValueError(f"unknown load kind {kind!r}")
    finally:
        stop.set()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - usage_before.ru_utime - usage_before.ru_stime
    return {"load": result, "probes": await probes, "loadgen_cpu_seconds": round(cpu, 2)}


def main() -> int:
    spec = json.load(sys.stdin)
    raise_open_file_limit()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        result = runner.run(run(spec))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Why model calls go through aiohttp: CPU per call of httpx and aiohttp, side by side.

    .venv/bin/python -m bench.clients     (part of nothing else; prints one line per client and round)

Both make the same POST to the lean model stub (tests/harness/modelstub.py, no delay) with 64 calls in
flight on one uvloop, interleaved over two rounds. On this machine httpx 0.28 cost about 3.2 ms
of CPU per call and aiohttp 3.14 about 0.15 ms: httpx's connection pool walks every open
connection on every request, so its cost grows with the calls in flight, which is exactly what
a server holding thousands of streams has.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import uvloop  # noqa: E402

from tests.harness.modelstub import ModelStub  # noqa: E402

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
IN_FLIGHT = 64
CALLS = 3000


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def with_httpx(url: str) -> None:
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits) as client:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def call():
            async with gate:
                response = await client.post(url, json=BODY)
                response.raise_for_status()
                response.json()

        await asyncio.gather(*(call() for _ in range(CALLS)))


async def with_aiohttp(url: str) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2000)) as session:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def call():
            async with gate, session.post(url, json=BODY) as response:
                response.raise_for_status()
                await response.json()

        await asyncio.gather(*(call() for _ in range(CALLS)))


def main() -> None:
    with ModelStub(delay=0) as stub:
        url = stub.base_url + "/chat/completions"
        for name, client in [("httpx", with_httpx), ("aiohttp", with_aiohttp)] * 2:
            cpu, wall = cpu_seconds(), time.monotonic()
            uvloop.run(client(url))
            per_call = (cpu_seconds() - cpu) / CALLS * 1e6
            print(f"{name:8} {per_call:6.0f} us of CPU per call, {CALLS / (time.monotonic() - wall):6.0f} calls/s")


if __name__ == "__main__":
    main()

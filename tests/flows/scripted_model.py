"""A scripted OpenAI-compatible ``/v1/chat/completions`` on loopback, for the Agent's tests.

Each request is answered by ``responder(body)`` (default: the next item of ``script``): a dict
``{"content": "..."}`` for a final answer, or ``{"tool_calls": [{"name": ..., "arguments": {...}}]}``
(``arguments`` a dict, or the raw text to send), optionally with ``content`` too, or
``{"status": 500}`` to fail with that HTTP status, or ``{"raw": {...}}`` to answer that JSON as it is
(an ``/embeddings`` answer: a request body with ``input`` and no ``messages``). Streamed
requests get the content in small pieces and each tool call as several deltas (the id and name
first, the arguments split in two), as OpenAI sends them. Every request body is recorded.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

from tests.harness.loopback import LoopbackHTTPServer


def final(content: str) -> dict:
    return {"content": content}


def calls(*pairs, content: str | None = None) -> dict:
    """``calls(("evaluate_expression", {"expression": "1+1"}), ...)``"""
    return {"content": content, "tool_calls": [{"name": name, "arguments": arguments} for name, arguments in pairs]}


class ScriptedModelServer(LoopbackHTTPServer):
    def __init__(self, script=None):
        self.script = list(script or [])
        self.responder = None
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with server.lock:
                    server.requests.append(body)
                    reply = server.responder(body) if server.responder else server.script.pop(0)
                if reply.get("status"):
                    self.send_response(reply["status"])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif "raw" in reply:
                    self._send_raw(reply["raw"])
                elif body.get("stream"):
                    self._stream(reply)
                else:
                    self._send(reply)

            def _message(self, reply: dict) -> dict:
                message = {"role": "assistant", "content": reply.get("content")}
                if reply.get("tool_calls"):
                    message["tool_calls"] = [
                        {"id": call.get("id", f"call_{index}"), "type": "function",
                         "function": {"name": call["name"], "arguments": _arguments(call)}}
                        for index, call in enumerate(reply["tool_calls"])
                    ]
                return message

            def _send(self, reply: dict):
                self._send_raw({"id": "chatcmpl-1", "object": "chat.completion", "choices": [
                    {"index": 0, "message": self._message(reply),
                     "finish_reason": "tool_calls" if reply.get("tool_calls") else "stop"}]})

            def _send_raw(self, answer: dict):
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: dict):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                deltas = []
                content = reply.get("content") or ""
                deltas += [{"content": content[start:start + 4]} for start in range(0, len(content), 4)]
                for index, call in enumerate(reply.get("tool_calls") or ()):
                    arguments = _arguments(call)
                    half = len(arguments) // 2
                    deltas.append({"tool_calls": [{"index": index, "id": call.get("id", f"call_{index}"),
                                                   "type": "function",
                                                   "function": {"name": call["name"], "arguments": ""}}]})
                    deltas.append({"tool_calls": [{"index": index, "function": {"arguments": arguments[:half]}}]})
                    deltas.append({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]})
                for delta in deltas:
                    chunk = {"choices": [{"index": 0, "delta": delta}]}
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

        super().__init__(Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"



def _arguments(call: dict) -> str:
    arguments = call.get("arguments", {})
    return arguments if isinstance(arguments, str) else json.dumps(arguments)

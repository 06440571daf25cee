"""A call to an OpenAI-compatible ``/chat/completions`` endpoint, plain or streamed (SSE)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests

from . import egress

logger = logging.getLogger("flows.engine.model")


class ModelCallFailed(Exception):
    """The call failed; ``str()`` is a short reason fit for the client, never the upstream body."""


@dataclass(frozen=True)
class ChatRequest:
    base_url: str
    api_key: str | None
    model: str
    messages: list[dict] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float = 60.0
    # A base URL a flow chose and the operator did not allow: connect to public addresses only.
    public_only: bool = False

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def body(self, *, stream: bool) -> dict:
        body = {"model": self.model, "messages": self.messages, "stream": stream}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        return body

    def headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


def _post(request: ChatRequest, *, stream: bool) -> requests.Response:
    """POST the body; never follow a redirect (a 3xx fails like any other non-2xx answer).

    Raises ModelCallFailed, and egress.Refused when a ``public_only`` call's host resolves
    to an address that is not public by the time it connects.
    """
    session = egress.public_only_session() if request.public_only else requests.Session()
    try:
        with session:
            response = session.post(
                request.url, json=request.body(stream=stream), headers=request.headers(),
                timeout=request.timeout, stream=stream, allow_redirects=False,
            )
    except requests.Timeout:
        raise ModelCallFailed(f"the model server did not answer within {request.timeout:g} s") from None
    except requests.RequestException as error:
        logger.warning("Model server unreachable at %s: %s", request.url, error)
        raise ModelCallFailed("could not connect to the model server") from None
    if response.status_code >= 300:
        logger.warning("Model server at %s answered HTTP %s: %.500s", request.url, response.status_code,
                       response.text)
        response.close()
        raise ModelCallFailed(f"the model server answered HTTP {response.status_code}")
    return response


def complete(request: ChatRequest) -> str:
    """Return the assistant's answer; raise ModelCallFailed."""
    response = _post(request, stream=False)
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except requests.Timeout:
        raise ModelCallFailed(f"the model server did not answer within {request.timeout:g} s") from None
    except (ValueError, KeyError, IndexError, TypeError, requests.RequestException):
        logger.warning("Unreadable answer from the model server at %s", request.url, exc_info=True)
        raise ModelCallFailed("the model server's answer could not be read") from None
    return content if isinstance(content, str) else ""


def stream(request: ChatRequest) -> Iterator[str]:
    """Yield the answer's text pieces as the server sends them (``data: {...}`` lines)."""
    response = _post(request, stream=True)
    try:
        for line in response.iter_lines():
            if not line.startswith(b"data:"):
                continue
            payload = line[len(b"data:"):].strip()
            if payload == b"[DONE]":
                return
            try:
                choices = json.loads(payload).get("choices") or [{}]
                piece = (choices[0].get("delta") or {}).get("content")
            except (ValueError, AttributeError, TypeError):
                logger.warning("Unreadable stream line from the model server at %s", request.url)
                raise ModelCallFailed("the model server's answer could not be read") from None
            if isinstance(piece, str) and piece:
                yield piece
    except requests.Timeout:
        raise ModelCallFailed(f"the model server did not answer within {request.timeout:g} s") from None
    except requests.RequestException:
        logger.warning("Model stream from %s broke off", request.url, exc_info=True)
        raise ModelCallFailed("the model server's answer broke off") from None
    finally:
        response.close()

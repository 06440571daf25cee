"""Texts to vectors through an OpenAI-compatible ``/embeddings`` endpoint, awaited.

The call is ``openai_chat``'s: the same aiohttp sessions (one per event loop), the same total
deadline (connecting, the headers and every read together), the same cap on the answer
(MODEL_MAX_RESPONSE_BYTES), no redirects, and a connection pinned to public addresses when the
base URL is not the operator's (``public_only``). Texts go in batches of at most
KNOWLEDGE_EMBEDDING_BATCH, one request after the other, all within one deadline.

Where: EMBEDDING_BASE_URL, else OPENAI_BASE_URL. The key: the caller's (a node's ``api_key``),
else EMBEDDING_API_KEY, else OPENAI_API_KEY but only when the embeddings go to OPENAI_BASE_URL:
the server's key never goes anywhere else.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from . import openai_chat
from .openai_chat import ModelCallFailed

__all__ = ["EmbeddingRequest", "ModelCallFailed", "embed", "embed_texts", "endpoint"]


@dataclass(frozen=True)
class EmbeddingRequest(openai_chat.ChatRequest):
    """A ``ChatRequest`` whose URL and body are the embeddings API's (so the call is openai_chat's)."""

    inputs: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/embeddings"

    def body(self, *, stream: bool) -> dict:
        return {"model": self.model, "input": list(self.inputs), "encoding_format": "float"}


def endpoint(api_key: str | None = None) -> tuple[str, str | None]:
    """``(base_url, api_key)`` of the embeddings server, as the module's docstring says."""
    own = settings.OPENAI_BASE_URL
    base_url = settings.EMBEDDING_BASE_URL.strip() or own
    if api_key:
        return base_url, api_key
    if settings.EMBEDDING_API_KEY:
        return base_url, settings.EMBEDDING_API_KEY
    same = base_url.rstrip("/") == own.rstrip("/")
    return base_url, (settings.OPENAI_API_KEY or None) if same else None


def _unreadable(request: EmbeddingRequest, why: str) -> ModelCallFailed:
    return ModelCallFailed(f"the embeddings answer from the model server could not be read: {why}")


async def embed(request: EmbeddingRequest) -> list[list[float]]:
    """One request: a vector per input, in their order; raise ModelCallFailed."""
    body = await openai_chat._body(request)  # the deadline, the size cap, the errors: openai_chat's
    try:
        items = json.loads(body)["data"]
        if not isinstance(items, list) or len(items) != len(request.inputs):
            raise _unreadable(request, f"{len(request.inputs)} vectors were asked for")
        ordered: list[list[float] | None] = [None] * len(items)
        for position, item in enumerate(items):
            index = item.get("index", position)
            vector = item["embedding"]
            if not isinstance(index, int) or not 0 <= index < len(items) or ordered[index] is not None:
                raise _unreadable(request, "the vectors' indexes are wrong")
            if not isinstance(vector, list) or not vector or not all(
                    isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    for value in vector):
                raise _unreadable(request, "a vector is not a list of finite numbers")
            if len(vector) > settings.KNOWLEDGE_MAX_DIMENSIONS:
                raise ModelCallFailed(f"the embeddings have {len(vector)} numbers, more than "
                                      f"KNOWLEDGE_MAX_DIMENSIONS ({settings.KNOWLEDGE_MAX_DIMENSIONS})")
            ordered[index] = [float(value) for value in vector]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _unreadable(request, "not the embeddings API's shape") from None
    vectors = [vector for vector in ordered if vector is not None]
    if len({len(vector) for vector in vectors}) > 1:
        raise _unreadable(request, "the vectors have different lengths")
    return vectors


async def embed_texts(texts: Sequence[str], *, model: str, api_key: str | None, timeout: float,
                      batch_size: int | None = None) -> list[list[float]]:
    """A vector per text, in batches, all within ``timeout`` seconds; raise ModelCallFailed."""
    base_url, key = endpoint(api_key)
    size = max(1, min(batch_size or settings.KNOWLEDGE_EMBEDDING_BATCH, settings.KNOWLEDGE_EMBEDDING_BATCH))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    vectors: list[list[float]] = []
    for start in range(0, len(texts), size):
        left = deadline - loop.time()
        if left <= 0:
            raise ModelCallFailed(f"the model server did not answer within {timeout:g} s")
        vectors += await embed(EmbeddingRequest(base_url=base_url, api_key=key, model=model, timeout=left,
                                                inputs=tuple(texts[start:start + size])))
    return vectors

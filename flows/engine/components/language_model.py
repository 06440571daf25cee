"""Language models over an OpenAI-compatible chat-completions API.

Where the call goes: the node's base URL (``base_url``, or ``openai_api_base`` on OpenAIModel,
set in the flow or by a tweak), else ``settings.OPENAI_BASE_URL``. The key: the node's
``api_key``, else ``settings.OPENAI_API_KEY``, but the server's own key is only ever sent to
the server's own base URL, never to an address a flow or a tweak chose.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from .. import openai_chat
from ..errors import UpstreamError
from .base import Component, register

OPENAI_PROVIDERS = {"", "openai", "openai compatible", "openai-compatible"}


class _ChatModel(Component):
    outputs = {"text_output": "text_response"}
    base_url_field = "base_url"
    extra_fields = frozenset({"base_url", "model_name", "api_key", "timeout"})

    def model_name(self) -> str:
        name = self.params.get("model_name")
        if isinstance(name, str) and name.strip():
            return name.strip()
        return settings.OPENAI_MODEL

    def provider(self) -> str:
        return self.text("provider")

    def endpoint(self) -> tuple[str, str | None]:
        """Return ``(base_url, api_key)`` for this call."""
        own_key = self.text("api_key").strip() or None
        chosen = self.text(self.base_url_field).strip()
        server_url = settings.OPENAI_BASE_URL
        if not chosen or chosen.rstrip("/") == server_url.rstrip("/"):
            return server_url, own_key or settings.OPENAI_API_KEY or None
        parts = urlsplit(chosen)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise self.fail(self.base_url_field, "must be an http(s) URL")
        return chosen, own_key

    def chat_request(self) -> openai_chat.ChatRequest:
        provider = self.provider()
        if provider.strip().lower() not in OPENAI_PROVIDERS:
            raise self.fail("provider", f"is {provider!r}: this server only calls OpenAI-compatible "
                                        "chat-completions APIs")
        base_url, api_key = self.endpoint()
        messages = []
        system = self.text("system_message")
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": self.text("input_value")})
        limit = settings.OPENAI_TIMEOUT
        timeout = self.number("timeout", limit, minimum=0, maximum=10**6) or limit
        return openai_chat.ChatRequest(
            base_url=base_url,
            api_key=api_key,
            model=self.model_name(),
            messages=messages,
            temperature=self.number("temperature", None, minimum=0, maximum=2),
            max_tokens=self.number("max_tokens", None, minimum=0, maximum=10**7, integer=True),
            timeout=min(timeout, limit),
        )

    def text_response(self):
        request = self.chat_request()
        message = self.message("", sender="Machine", sender_name="AI")
        try:
            if self.context.stream:
                pieces = []
                for piece in openai_chat.stream(request):
                    pieces.append(piece)
                    yield "token", {"chunk": piece, "id": message.id, "timestamp": message.timestamp}
                message.text = "".join(pieces)
            else:
                message.text = openai_chat.complete(request)
        except openai_chat.ModelCallFailed as error:
            raise UpstreamError(f"Model call failed in node {self.node.id}: {error}",
                                node_ids=(self.node.id,)) from None
        return message


@register("LanguageModelComponent")
class LanguageModel(_ChatModel):
    """Langflow's generic "Language Model": ``model`` holds the chosen model and its provider."""

    def _chosen_model(self) -> dict:
        chosen = self.params.get("model")
        if isinstance(chosen, list) and chosen and isinstance(chosen[0], dict):
            return chosen[0]
        return {}

    def model_name(self) -> str:
        name = self.params.get("model_name") or self._chosen_model().get("name") or self.params.get("model")
        if isinstance(name, str) and name.strip():
            return name.strip()
        return settings.OPENAI_MODEL

    def provider(self) -> str:
        provider = self.params.get("provider") or self._chosen_model().get("provider") or ""
        return provider if isinstance(provider, str) else ""


@register("OpenAIModel")
class OpenAIModel(_ChatModel):
    base_url_field = "openai_api_base"
    extra_fields = frozenset({"openai_api_base", "model_name", "api_key", "timeout"})

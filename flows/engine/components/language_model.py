"""Language models over an OpenAI-compatible chat-completions API.

Where the call goes: the node's base URL (``base_url``, or ``openai_api_base`` on OpenAIModel,
set in the flow or by a tweak), else ``settings.OPENAI_BASE_URL``. The key: the node's
``api_key``, else ``settings.OPENAI_API_KEY``, but the server's own key is only ever sent to
the server's own base URL, never to an address a flow or a tweak chose. A base URL the flow
chose must pass ``egress``: public addresses only, unless the operator allowed it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import aclosing, contextmanager

from django.conf import settings

from .. import egress, openai_chat
from ..errors import UpstreamError
from .base import Component, Produced, register

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

    def chosen_base_url(self) -> egress.BaseUrl | None:
        """The base URL the flow or a tweak chose, or None for the server's own OPENAI_BASE_URL."""
        chosen = self.text(self.base_url_field).strip()
        if not chosen or chosen.rstrip("/") == settings.OPENAI_BASE_URL.rstrip("/"):
            return None
        with self.egress_policy():
            return egress.parse_base_url(chosen)

    def endpoint(self) -> tuple[str, str | None, bool]:
        """Return ``(base_url, api_key, public_only)`` for this call; ``public_only`` when the
        flow chose a base URL the operator did not allow (its connection then checks again)."""
        own_key = self.text("api_key").strip() or None
        chosen = self.chosen_base_url()
        if chosen is None:
            return settings.OPENAI_BASE_URL, own_key or settings.OPENAI_API_KEY or None, False
        return chosen.url, own_key, not egress.is_allowed(chosen)

    async def check(self) -> None:
        """Before the run: the base URL the flow chose must resolve to public addresses only
        (unless allowed), so a refused one is a 422 even for a streamed run."""
        chosen = self.chosen_base_url()
        if chosen is not None and not egress.is_allowed(chosen):
            with self.egress_policy():
                await egress.require_public_async(chosen.host, chosen.port)

    @contextmanager
    def egress_policy(self) -> Iterator[None]:
        """A refused base URL is a 422 naming the node and the field; a host that does not
        resolve fails like any other connection (502)."""
        try:
            yield
        except egress.Refused as refusal:
            raise self.fail(self.base_url_field, str(refusal)) from None
        except egress.HostNotFound:
            raise self.model_call_failed("could not connect to the model server") from None

    def model_call_failed(self, reason: str) -> UpstreamError:
        return UpstreamError(f"Model call failed in node {self.node.id}: {reason}", node_ids=(self.node.id,))

    def chat_request(self) -> openai_chat.ChatRequest:
        provider = self.provider()
        if provider.strip().lower() not in OPENAI_PROVIDERS:
            raise self.fail("provider", f"is {provider!r}: this server only calls OpenAI-compatible "
                                        "chat-completions APIs")
        base_url, api_key, public_only = self.endpoint()
        messages = []
        system = self.text("system_message")
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": self.text("input_value")})
        limit = settings.OPENAI_TIMEOUT
        timeout = self.number("timeout", limit, minimum=0, maximum=10**6) or limit
        # The call's whole deadline: the node's, OPENAI_TIMEOUT, and what is left of the run's budget.
        budget = self.context.budget
        if budget.expired():
            raise budget.out_of_time(self.node.id)
        return openai_chat.ChatRequest(
            base_url=base_url,
            api_key=api_key,
            model=self.model_name(),
            messages=messages,
            temperature=self.number("temperature", None, minimum=0, maximum=2),
            max_tokens=self.integer("max_tokens", None, minimum=0, maximum=10**7),
            timeout=min(timeout, limit, budget.remaining()),
            public_only=public_only,
        )

    async def text_response(self):
        request = self.chat_request()
        message = self.message("", sender="Machine", sender_name="AI")
        try:
            with self.egress_policy():  # the connection checks the addresses again (DNS rebinding)
                if self.context.stream:
                    pieces = []
                    async with aclosing(openai_chat.stream(request)) as stream:
                        async for piece in stream:
                            pieces.append(piece)
                            yield "token", {"chunk": piece, "id": message.id, "timestamp": message.timestamp}
                    message.text = "".join(pieces)
                else:
                    message.text = await openai_chat.complete(request)
        except openai_chat.ModelCallFailed as error:
            if self.context.budget.expired():  # the run's budget, not the model, set the deadline
                raise self.context.budget.out_of_time(self.node.id) from None
            raise self.model_call_failed(str(error)) from None
        yield Produced(message)


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

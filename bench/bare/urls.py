"""The bare project's routes.

``echo``: one APIView, parse the JSON body, one SQL query, a small JSON answer: the comparison of
the I/O-bound section's figure 4. ``run``: a minimal async view awaiting the model over httpx
(plain, or streamed in Langflow's event framing), which `python -m bench.iobound --selfcheck`
loads to show what the harness measures when the server is not the limit.
"""

import json
import os

import httpx
from django.http import HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Item


class EchoView(APIView):
    def post(self, request):
        body = request.data
        return Response({
            "items": Item.objects.exists(),
            "input_value": body.get("input_value") if isinstance(body, dict) else None,
        })

    def get(self, request):
        return Response({"items": Item.objects.exists()})


_client: dict = {}


def model_client() -> httpx.AsyncClient:
    """One client per worker process, created on first use inside its event loop; no connection cap."""
    if "client" not in _client:
        _client["client"] = httpx.AsyncClient(
            base_url=os.environ["BARE_MODEL_URL"], timeout=60,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=200),
        )
    return _client["client"]


def _model_name(body: dict) -> str:
    for params in (body.get("tweaks") or {}).values():
        if isinstance(params, dict) and isinstance(params.get("model_name"), str):
            return params["model_name"]
    return "stub"


def _event(name: str, data: dict) -> str:
    return json.dumps({"event": name, "data": data}) + "\n\n"


@csrf_exempt
async def run(request):
    try:
        body = json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest()
    payload = {"model": _model_name(body), "messages": [{"role": "user", "content": str(body.get("input_value", ""))}]}
    if request.GET.get("stream") != "true":
        answer = await model_client().post("/chat/completions", json=payload)
        text = answer.json()["choices"][0]["message"]["content"]
        return JsonResponse({"outputs": [{"outputs": [{"results": {"message": {"text": text}}}]}]})

    async def events():
        pieces = []
        async with model_client().stream("POST", "/chat/completions", json={**payload, "stream": True}) as answer:
            async for line in answer.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                piece = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                pieces.append(piece)
                yield _event("token", {"chunk": piece})
        yield _event("end", {"result": {"message": {"text": "".join(pieces)}}})

    return StreamingHttpResponse(events(), content_type="text/event-stream")


urlpatterns = [path("echo", EchoView.as_view()), path("run", run)]

"""Receiving webhook calls: find the flow, record the call and queue its run, in one transaction.

The run itself happens later, on a worker (``webhooks.jobs``); the call is answered 202 as
soon as the row and its job are committed, so an accepted call is never lost.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.http import Http404

from flows import engine
from flows import services as flow_services
from flows.models import Flow, FlowPermission, reference_terms

from .models import WebhookRun

WEBHOOK_TYPE = "Webhook"
NO_WEBHOOK = ("This flow has no Webhook component: add one (its output is the request body as Data) "
              "to run the flow from /api/v1/webhook.")


class NoWebhookComponent(engine.FlowError):
    status_code = 422


def find_webhook_flow(*, user, api_key, reference: str) -> Flow:
    """The flow a webhook call names: among the caller's (a key within its limits, as on /run),
    or, for a call without credentials (LANGFLOW_WEBHOOK_AUTH_ENABLE off), any flow by its id
    or by an endpoint name that one flow alone has. Raises Http404 otherwise."""
    if user is not None and user.is_authenticated:
        return flow_services.get_flow_for_request(user=user, api_key=api_key, reference=reference,
                                                  permission=FlowPermission.RUN, with_data=False)
    flow_id, endpoint_name = reference_terms(str(reference))
    flows = Flow.objects.defer("data")
    found = flows.filter(pk=flow_id).first() if flow_id is not None else None
    if found is None and endpoint_name is not None:
        named = list(flows.filter(endpoint_name=endpoint_name)[:2])
        found = named[0] if len(named) == 1 else None
    if found is None:
        raise Http404(flow_services.FLOW_NOT_FOUND)
    return found


def webhook_node_ids(flow: Flow) -> list[str]:
    """The flow's Webhook nodes. Raises engine.InvalidGraph (422) when the flow cannot run, and
    NoWebhookComponent (422) when it has none: refused now, rather than failing in the background."""
    graph = flow_services.flow_graph(flow)
    ids = [node.id for node in graph.nodes.values() if node.type == WEBHOOK_TYPE]
    if not ids:
        raise NoWebhookComponent(NO_WEBHOOK)
    return ids


def receive_webhook(*, flow: Flow, body: str) -> WebhookRun:
    """Record a call of ``flow``'s webhook with ``body`` and queue its first attempt: both in one
    transaction, so a committed call always has a job, and a job always has its call."""
    from .tasks import run_webhook  # the task module imports the worker side

    webhook_node_ids(flow)
    run_id = uuid.uuid4()
    with transaction.atomic():
        job = run_webhook.enqueue(str(run_id), 1)
        return WebhookRun.objects.create(id=run_id, flow=flow, body=body, task_id=str(job.id))


def runs_of(flow: Flow):
    """The flow's webhook runs, newest first (the body left out: it may be large)."""
    return WebhookRun.objects.filter(flow=flow).defer("body").order_by("-received_at", "-id")

"""Fixtures for the webhook tests: a flow shaped like Langflow's webhook starter (Webhook -> Parser
-> Chat Output), and a way to run the queued jobs as a worker would."""

import pytest

from flows import services
from tests.flows.graphs import chat_out, edge, flow_data, node


def webhook_flow_data(*, webhook_id="Webhook-1", mode="Stringify", pattern="{text}") -> dict:
    """Webhook -> Parser -> Chat Output, as Langflow exports them (template fields only)."""
    return flow_data(
        node(webhook_id, "Webhook", "Webhook", data="", curl="", endpoint=""),
        node("ParserComponent-1", "ParserComponent", "Parser", input_data="", mode=mode, pattern=pattern, sep="\n"),
        chat_out(),
        edge(webhook_id, "output_data", "ParserComponent-1", "input_data"),
        edge("ParserComponent-1", "parsed_text", "ChatOutput-1", "input_value"),
    )


@pytest.fixture
def webhook_flow(user):
    return services.create_flow(owner=user, name="Hook", endpoint_name="hook", data=webhook_flow_data())


@pytest.fixture
def key(user, make_key):
    return make_key(user)[1]


@pytest.fixture(autouse=True)
def no_housekeeping_thread(monkeypatch):
    """Tests call the heartbeat and the sweep themselves; no thread of the worker's runs beside them."""
    from webhooks import jobs

    monkeypatch.setattr(jobs, "start_housekeeping", lambda: None)


@pytest.fixture
def run_jobs(monkeypatch):
    """Run every queued job that is due, as ``manage.py runworker`` would."""
    from django_tasks_db.management.commands import db_worker
    from django_tasks_db.management.commands.db_worker import Worker

    # The worker closes "old" connections between jobs: inside a test's transaction, that is the test's.
    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)

    def run() -> None:
        Worker(queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
               max_tasks=None, worker_id="test-worker", excluded_queue_names=[]).run()

    return run

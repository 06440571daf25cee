"""Chat memory: runs store their Chat Input and Chat Output messages per flow and session,
history reads them back in order and within limits, and Memory Base recalls them."""

import json

import pytest
from asgiref.sync import async_to_sync

from flows import memory, services
from flows.engine.components.base import RunContext
from flows.engine.components.memory import MemoryBase
from flows.engine.messages import Message as EngineMessage
from flows.memory import DatabaseChatMemory
from flows.models import Message
from tests.flows.conftest import FIXTURES
from tests.flows.graphs import chat_in, edge, flow_data, node

pytestmark = pytest.mark.django_db


def run(api_client, flow, key, body, **query):
    url = f"/api/v1/run/{flow.pk}" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    return api_client.post(url, body, format="json", HTTP_X_API_KEY=key)


def stored(flow, session_id=None):
    rows = Message.objects.filter(flow=flow).order_by("timestamp", "id")
    if session_id is not None:
        rows = rows.filter(session_id=session_id)
    return [(row.session_id, row.sender, row.sender_name, row.text) for row in rows]


def test_a_run_stores_its_input_and_its_answer_in_its_session(api_client, echo_flow, key):
    run(api_client, echo_flow, key, {"input_value": "hello", "session_id": "s-1"})
    run(api_client, echo_flow, key, {"input_value": "again", "session_id": "s-1"})
    run(api_client, echo_flow, key, {"input_value": "other", "session_id": "s-2"})
    assert stored(echo_flow, "s-1") == [("s-1", "User", "User", "hello"), ("s-1", "Machine", "AI", "hello"),
                                        ("s-1", "User", "User", "again"), ("s-1", "Machine", "AI", "again")]
    assert stored(echo_flow, "s-2") == [("s-2", "User", "User", "other"), ("s-2", "Machine", "AI", "other")]


def test_without_a_session_the_flow_id_is_the_session_and_the_answer_says_so(api_client, echo_flow, key):
    response = run(api_client, echo_flow, key, {"input_value": "no session"})
    assert response.json()["session_id"] == str(echo_flow.pk)
    assert {session for session, *_ in stored(echo_flow)} == {str(echo_flow.pk)}


def test_the_stored_message_is_the_one_the_run_answered(api_client, echo_flow, key):
    answer = run(api_client, echo_flow, key, {"input_value": "same id", "session_id": "s"}).json()
    message = answer["outputs"][0]["outputs"][0]["results"]["message"]
    row = Message.objects.get(pk=message["id"])
    assert (row.text, row.sender, row.flow_id) == ("same id", "Machine", echo_flow.pk)


def test_should_store_message_off_stores_nothing(api_client, echo_flow, key):
    run(api_client, echo_flow, key, {"input_value": "secret", "tweaks": {"should_store_message": False}})
    assert stored(echo_flow) == []


def test_should_store_message_off_per_node_stores_only_the_other_node(api_client, echo_flow, key):
    body = {"input_value": "half", "tweaks": {"ChatInput-b6UCc": {"should_store_message": False}}}
    assert run(api_client, echo_flow, key, body).status_code == 200
    assert [row[1:] for row in stored(echo_flow)] == [("Machine", "AI", "half")]
    both_off = {node: {"should_store_message": False} for node in ("ChatInput-b6UCc", "ChatOutput-yK0AU")}
    assert run(api_client, echo_flow, key, {"input_value": "none", "tweaks": both_off}).status_code == 200
    assert [row[3] for row in stored(echo_flow)] == ["half"]


def test_a_node_session_id_and_sender_name_are_kept(api_client, echo_flow, key):
    run(api_client, echo_flow, key, {"input_value": "x", "session_id": "run-session",
                                      "tweaks": {"ChatOutput-yK0AU": {"session_id": "own", "sender_name": "Bot"}}})
    assert stored(echo_flow) == [("run-session", "User", "User", "x"), ("own", "Machine", "Bot", "x")]


def test_a_session_id_too_long_to_store_is_a_422_naming_the_node(api_client, echo_flow, key):
    response = run(api_client, echo_flow, key, {"input_value": "x", "tweaks": {"ChatInput-b6UCc": {"session_id": "s" * 256}}})
    assert response.status_code == 422
    assert "ChatInput-b6UCc" in response.json()["detail"] and "session_id" in response.json()["detail"]
    assert stored(echo_flow) == []


def test_a_streamed_run_stores_its_messages_too(api_client, echo_flow, key):
    response = run(api_client, echo_flow, key, {"input_value": "streamed", "session_id": "st"}, stream="true")
    assert b'"event": "end"' in b"".join(response)
    assert stored(echo_flow, "st") == [("st", "User", "User", "streamed"), ("st", "Machine", "AI", "streamed")]


def test_a_failed_run_still_keeps_the_question(api_client, prompting_flow, key):
    response = run(api_client, prompting_flow, key, {"input_value": "are you there?", "session_id": "f"})
    assert response.status_code == 502  # the default model server refuses connections
    assert stored(prompting_flow) == [("f", "User", "User", "are you there?")]


def test_deleting_the_flow_deletes_its_messages(api_client, echo_flow, key):
    run(api_client, echo_flow, key, {"input_value": "x"})
    services.delete_flow(echo_flow)
    assert not Message.objects.exists()


# --- History ----------------------------------------------------------------------------------

def remember(flow, session_id, *texts, sender="User"):
    async def store():
        chat = DatabaseChatMemory(flow_id=str(flow.pk), session_id=session_id)
        for text in texts:
            await chat.store(EngineMessage(text=text, sender=sender, sender_name=sender, session_id=session_id,
                                           flow_id=str(flow.pk)))
        await chat.flush()
    async_to_sync(store)()


def history(flow, session_id, limit, **kwargs):
    chat = DatabaseChatMemory(flow_id=str(flow.pk), session_id=session_id)
    return [message.text for message in async_to_sync(chat.history)(limit, **kwargs)]


def test_history_is_the_latest_n_of_the_session_oldest_first(echo_flow):
    remember(echo_flow, "a", "one", "two", "three", "four")
    remember(echo_flow, "b", "elsewhere")
    assert history(echo_flow, "a", 3) == ["two", "three", "four"]
    assert history(echo_flow, "a", 3, order="Descending") == ["four", "three", "two"]
    assert history(echo_flow, "a", 100) == ["one", "two", "three", "four"]
    assert history(echo_flow, "a", 0) == []
    assert history(echo_flow, "b", 10) == ["elsewhere"]


def test_history_filters_by_sender(echo_flow):
    remember(echo_flow, "a", "question", sender="User")
    remember(echo_flow, "a", "answer", sender="Machine")
    remember(echo_flow, "a", "follow-up", sender="User")
    assert history(echo_flow, "a", 10, sender="User") == ["question", "follow-up"]
    assert history(echo_flow, "a", 10, sender="Machine") == ["answer"]


def test_history_messages_have_langflows_shape(echo_flow):
    remember(echo_flow, "a", "shaped")
    chat = DatabaseChatMemory(flow_id=str(echo_flow.pk), session_id="a")
    [message] = async_to_sync(chat.history)(1)
    assert message.session_id == "a" and message.flow_id == str(echo_flow.pk)
    assert message.timestamp.endswith(" UTC") and Message.objects.filter(pk=message.id).exists()


def test_history_refuses_an_unknown_order(echo_flow):
    chat = DatabaseChatMemory(flow_id=str(echo_flow.pk), session_id="a")
    with pytest.raises(ValueError, match="Ascending"):
        async_to_sync(chat.history)(1, order="Sideways")


def test_history_stops_before_its_texts_exceed_the_value_limit(echo_flow, settings):
    settings.FLOW_MAX_VALUE_BYTES = 25
    remember(echo_flow, "a", "x" * 10, "y" * 10, "z" * 10)
    assert history(echo_flow, "a", 10) == ["y" * 10, "z" * 10]


def test_a_run_reads_earlier_runs_not_its_own_messages(echo_flow):
    remember(echo_flow, "a", "earlier")

    async def during_a_run():
        chat = DatabaseChatMemory(flow_id=str(echo_flow.pk), session_id="a")
        await chat.store(EngineMessage(text="now", sender="User", session_id="a"))
        seen = [message.text for message in await chat.history(10)]
        await chat.flush()
        return seen

    assert async_to_sync(during_a_run)() == ["earlier"]
    assert history(echo_flow, "a", 10) == ["earlier", "now"]


# --- The cap ----------------------------------------------------------------------------------

def test_a_flow_keeps_at_most_flow_max_messages_the_oldest_go(echo_flow, settings, monkeypatch):
    settings.FLOW_MAX_MESSAGES = 3
    monkeypatch.setattr(memory, "PRUNE_EVERY", 1)
    remember(echo_flow, "a", "1", "2")
    remember(echo_flow, "b", "3", "4")
    remember(echo_flow, "a", "5")
    assert [row.text for row in Message.objects.order_by("timestamp")] == ["3", "4", "5"]


def test_the_cap_is_checked_at_a_first_write_then_every_prune_every_writes(monkeypatch):
    monkeypatch.setattr(memory, "PRUNE_EVERY", 3)
    schedule = memory._PruneSchedule()
    assert [schedule.is_due("f") for _ in range(7)] == [True, False, False, True, False, False, True]
    assert schedule.is_due("g") is True


def test_the_schedule_tracks_a_bounded_number_of_flows(monkeypatch):
    monkeypatch.setattr(memory, "PRUNE_TRACKED_FLOWS", 2)
    schedule = memory._PruneSchedule()
    for flow_id in ("a", "b", "c"):
        schedule.is_due(flow_id)
    assert list(schedule._writes) == ["b", "c"]


# --- Memory Base ------------------------------------------------------------------------------

def memory_base(node_id="MemoryBase-1", **values):
    fields = {"memory_base": None, "search_query": "", "top_k": 5, "include_metadata": True,
              "filter_by_session": True, **values}
    return node(node_id, "MemoryBase", "Memory Base", **fields)


@pytest.fixture
def recall_flow(user):
    """Chat Input -> Memory Base's search query -> Chat Output (rows rendered by ``{content}``)."""
    output = node("Out", "ChatOutput", "Chat Output", input_value="", data_template="{content}")
    data = flow_data(chat_in("In", value=""), memory_base("Mem"), output,
                     edge("In", "message", "Mem", "search_query"), edge("Mem", "retrieve_data", "Out", "input_value"))
    return services.create_flow(owner=user, name="Recall", data=data)


def answer_text(response) -> str:
    return response.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]


def test_memory_base_recalls_the_best_matching_earlier_messages_of_the_session(api_client, recall_flow, key):
    remember(recall_flow, "s", "My favourite fruit is the pineapple", "The weather is grey", "pineapple pizza, fruit?")
    remember(recall_flow, "other", "pineapple in another session")
    response = run(api_client, recall_flow, key, {"input_value": "favourite fruit pineapple", "session_id": "s"})
    assert answer_text(response).split("\n") == ["My favourite fruit is the pineapple", "pineapple pizza, fruit?"]


def test_memory_base_across_sessions_when_filter_by_session_is_off(api_client, recall_flow, key):
    remember(recall_flow, "other", "pineapple in another session")
    response = run(api_client, recall_flow, key, {"input_value": "pineapple", "session_id": "s",
                                                   "tweaks": {"Mem": {"filter_by_session": False}}})
    assert answer_text(response) == "pineapple in another session"


def test_memory_base_never_recalls_the_question_it_is_asked(api_client, recall_flow, key):
    response = run(api_client, recall_flow, key, {"input_value": "pineapple", "session_id": "s"})
    assert answer_text(response) == ""


def test_search_ranks_by_shared_words_then_newest_and_honours_the_limit(recall_flow):
    remember(recall_flow, "s", "alpha one", "alpha two", "alpha beta three", "nothing")
    chat = DatabaseChatMemory(flow_id=str(recall_flow.pk), session_id="s")
    found = async_to_sync(chat.search)("alpha beta", 3)
    assert [(message.text, score) for message, score in found] == [
        ("alpha beta three", 1.0), ("alpha two", 0.5), ("alpha one", 0.5)]
    assert len(async_to_sync(chat.search)("alpha", 1)) == 1
    assert async_to_sync(chat.search)("   ", 5) == []


def test_search_stops_before_its_texts_exceed_max_bytes(recall_flow):
    remember(recall_flow, "s", "alpha " + "x" * 20, "alpha " + "y" * 20)
    chat = DatabaseChatMemory(flow_id=str(recall_flow.pk), session_id="s")
    assert len(async_to_sync(chat.search)("alpha", 5, max_bytes=30)) == 1


def test_memory_base_row_shape(recall_flow):
    remember(recall_flow, "s", "beta gamma")
    chat = DatabaseChatMemory(flow_id=str(recall_flow.pk), session_id="s")
    graph_node = services.flow_graph(recall_flow).nodes["Mem"]
    context = RunContext(flow_id=str(recall_flow.pk), session_id="s", stream=False, memory=chat)

    def rows(**params):
        component = MemoryBase(node=graph_node, params={"search_query": "gamma delta", **params}, context=context)
        return async_to_sync(component.retrieve_memory)()

    [row] = rows()
    assert row["content"] == "beta gamma" and row["_score"] == 0.5
    assert (row["session_id"], row["sender"], row["flow_id"]) == ("s", "User", str(recall_flow.pk))
    assert set(row) == {"content", "_score", "session_id", "sender", "sender_name", "timestamp", "message_id",
                        "flow_id"}
    assert rows(include_metadata=False) == [{"content": "beta gamma", "_score": 0.5}]
    assert rows(search_query="  ") == []


@pytest.mark.parametrize("top_k", [0, 101, "many"])
def test_memory_base_refuses_a_bad_top_k_naming_the_node(api_client, recall_flow, key, top_k):
    response = run(api_client, recall_flow, key, {"input_value": "x", "tweaks": {"Mem": {"top_k": top_k}}})
    assert response.status_code == 422 and "Mem" in response.json()["detail"]


def test_the_memory_chatbot_starter_compiles_with_memory_base_as_a_tool():
    starter = json.loads((FIXTURES / "starters" / "Memory Chatbot.json").read_text())
    graph = services.engine.compile_graph(starter["data"])
    [tool] = graph.nodes["MemoryBase-xePih"].tools
    assert tool.name == "retrieve_memory" and tool.arguments == {"search_query"}


# --- The Memory Chatbot starter, end to end -----------------------------------------------------

@pytest.fixture
def scripted(settings):
    from tests.flows.scripted_model import ScriptedModelServer

    with ScriptedModelServer() as server:
        settings.OPENAI_BASE_URL = server.base_url
        yield server


def test_the_memory_chatbot_remembers_through_history_and_its_memory_base_tool(api_client, user, key, scripted):
    from tests.flows.scripted_model import calls, final

    starter = json.loads((FIXTURES / "starters" / "Memory Chatbot.json").read_text())
    [flow] = services.import_flows(user=user, payload=starter)
    scripted.script = [final("Nice to meet you, Ada.")]
    first = run(api_client, flow, key, {"input_value": "My name is Ada", "session_id": "chat"})
    assert answer_text(first) == "Nice to meet you, Ada."
    scripted.script = [calls(("retrieve_memory", {"search_query": "name"})), final("Your name is Ada.")]
    second = run(api_client, flow, key, {"input_value": "What is my name?", "session_id": "chat"})
    assert answer_text(second) == "Your name is Ada."
    asked, after_tool = scripted.requests[1], scripted.requests[2]
    contents = [message.get("content") for message in asked["messages"]]
    assert "My name is Ada" in contents and "Nice to meet you, Ada." in contents  # the session's history
    assert contents[-1] == "What is my name?"
    [tool_result] = [message for message in after_tool["messages"] if message["role"] == "tool"]
    recalled = json.loads(tool_result["content"])
    assert recalled[0]["content"] == "My name is Ada" and recalled[0]["session_id"] == "chat"
    assert stored(flow, "chat")[-2:] == [("chat", "User", "User", "What is my name?"),
                                         ("chat", "Machine", "AI", "Your name is Ada.")]


# --- Writes: one row as the ORM would write it, group commits -------------------------------

def engine_message(flow, text, *, session_id="g", sender="User", message_id=None):
    return EngineMessage(text=text, sender=sender, sender_name=sender, session_id=session_id, flow_id=str(flow.pk),
                         **({"id": message_id} if message_id else {}))


def test_a_stored_row_is_what_the_orm_would_write(echo_flow):
    import uuid

    compiled_id, orm_id = uuid.uuid4(), uuid.uuid4()
    memory.store_messages(str(echo_flow.pk), [engine_message(echo_flow, "héllo", message_id=str(compiled_id))])
    written = Message.objects.get(pk=compiled_id)
    Message.objects.create(id=orm_id, flow=echo_flow, session_id="g", sender="User", sender_name="User",
                           text="héllo", timestamp=written.timestamp, properties=memory.default_properties())
    fields = [field.attname for field in Message._meta.concrete_fields if field.attname != "id"]
    compiled, orm = (Message.objects.filter(pk=pk).values(*fields).get() for pk in (compiled_id, orm_id))
    assert compiled == orm


def test_runs_ending_together_are_written_in_one_group_each_in_its_order(echo_flow, other_user, monkeypatch):
    other_flow = services.import_flows(user=other_user, payload=json.loads((FIXTURES / "echo.json").read_text()))[0]
    jobs = []
    real_run = memory.dbthreads.run

    async def counted(function, *args, **kwargs):
        jobs.append([flow_id for flow_id, _ in args[0]])
        return await real_run(function, *args, **kwargs)

    monkeypatch.setattr(memory.dbthreads, "run", counted)

    async def one_run(flow, session_id, texts):
        chat = DatabaseChatMemory(flow_id=str(flow.pk), session_id=session_id)
        for text in texts:
            await chat.store(engine_message(flow, text, session_id=session_id))
        await chat.flush()

    async def runs_ending_together():
        import asyncio

        await asyncio.gather(*(one_run(echo_flow, f"s{i}", [f"q{i}", f"a{i}"]) for i in range(5)),
                             one_run(other_flow, "o", ["elsewhere"]))
        await one_run(echo_flow, "later", ["alone"])

    async_to_sync(runs_ending_together)()
    # The six runs that ended before the writer got its turn share one write; the later run has its own.
    assert [len(job) for job in jobs] == [6, 1]
    for i in range(5):
        assert [text for *_, text in stored(echo_flow, f"s{i}")] == [f"q{i}", f"a{i}"]
    assert [text for *_, text in stored(other_flow)] == ["elsewhere"]
    assert [text for *_, text in stored(echo_flow, "later")] == ["alone"]


def test_one_runs_bad_write_fails_that_run_alone(echo_flow):
    import asyncio
    import uuid

    from django.db import IntegrityError

    taken = str(uuid.uuid4())
    memory.store_messages(str(echo_flow.pk), [engine_message(echo_flow, "first", message_id=taken)])

    async def one_run(session_id, message_id=None):
        chat = DatabaseChatMemory(flow_id=str(echo_flow.pk), session_id=session_id)
        await chat.store(engine_message(echo_flow, session_id, session_id=session_id, message_id=message_id))
        await chat.flush()

    async def together():
        return await asyncio.gather(one_run("ok-1"), one_run("ok-2"), one_run("clash", message_id=taken),
                                    one_run("ok-3"), return_exceptions=True)

    outcomes = async_to_sync(together)()
    assert outcomes[:2] == [None, None] and outcomes[3] is None
    assert isinstance(outcomes[2], IntegrityError)
    assert {session for session, *_ in stored(echo_flow)} == {"g", "ok-1", "ok-2", "ok-3"}


def test_a_run_whose_client_left_still_has_its_messages_written(echo_flow):
    import asyncio

    async def left_while_writing():
        chat = DatabaseChatMemory(flow_id=str(echo_flow.pk), session_id="gone")
        await chat.store(engine_message(echo_flow, "asked", session_id="gone"))
        other = DatabaseChatMemory(flow_id=str(echo_flow.pk), session_id="stays")
        await other.store(engine_message(echo_flow, "kept", session_id="stays"))
        first = asyncio.ensure_future(other.flush())   # starts the writing task
        leaving = asyncio.ensure_future(chat.flush())  # queued behind it
        await asyncio.sleep(0)
        leaving.cancel()
        await first
        with pytest.raises(asyncio.CancelledError):
            await leaving
        await asyncio.sleep(0.05)  # the writer's next group

    async_to_sync(left_while_writing)()
    assert stored(echo_flow, "gone") == [("gone", "User", "User", "asked")]

"""The engine's limits (flows.engine.limits): every flow and every run is bounded, and a request over
a limit is refused before the work, naming the setting and the node. No HTTP, no database."""

import asyncio
import json
import time
import tracemalloc

import pytest

from flows.engine import InvalidGraph, RunRequest, compile_graph, execute, plan_run, run_response, run_to_end
from flows.engine.limits import LimitExceeded, Limits, RunBudget, json_size, json_string_size, text_size
from flows.engine.messages import Message, as_text, format_data
from flows.engine.structure import structure_errors
from tests.flows.graphs import chat_in, chat_out, edge, flow_data, node, prompt

MiB = 1024 * 1024


def limits(**changes) -> Limits:
    values = {"max_nodes": 1000, "max_edges": 5000, "max_run_parameters": 100_000, "max_value_bytes": 8 * MiB,
              "max_answer_bytes": 32 * MiB, "run_time_budget": 90.0}
    return Limits(**{**values, **changes})


def run(data, limits_=None, **request):
    plan = plan_run(compile_graph(data), RunRequest(**request), flow_id="flow-1", limits=limits_)
    return asyncio.run(run_to_end(plan))


def texts(result) -> dict[str, str]:
    return {item.node.id: item.value.text for item in result.outputs}


def peak_memory(work) -> tuple[int, object]:
    """Run ``work()``; return the peak of memory it allocated (tracemalloc) and its result or error."""
    tracemalloc.start()
    try:
        try:
            outcome = work()
        except Exception as error:  # noqa: BLE001 - the caller inspects it
            outcome = error
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


def prompt_flow(template: str, **variables) -> dict:
    return flow_data(prompt(template=template, **variables), chat_out(),
                     edge("Prompt-1", "prompt", "ChatOutput-1", "input_value"))


# --- Measuring -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "plain", "é and 😀", "\ud800 lone", "x" * 200_000 + "é"])
def test_text_size_is_the_utf8_size(text):
    assert text_size(text) == len(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("value", [
    "quote \" backslash \\ newline \n tab \t bell \x07 nul \x00",
    {"a": [1, 2.5, None, True, False, {"b": "é\u2028"}], "c": ""},
    [[], {}, "x" * 70_000 + "\x01" * 3],
])
def test_json_size_is_at_least_what_json_writes_and_close_to_it(value):
    written = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    assert written <= json_size(value) <= written * 1.1 + 64


@pytest.mark.parametrize("text", [
    "", "plain", "quote \" backslash \\ newline \n tab \t bell \x07 nul \x00 del \x7f", "é and 😀",
    "x" * 70_000, "\x01" * 70_000, "é" * 70_000,
])
def test_a_string_measures_exactly_what_json_writes(text):
    # Short ASCII strings take the json module's encoder, the rest the chunked count: both exact.
    assert json_string_size(text) == len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def test_a_control_character_counts_six_bytes_in_json():
    assert json_string_size("\x01" * 1000) == 2 + 6 * 1000
    assert json_string_size("\n" * 1000) == 2 + 2 * 1000


# --- The graph ---------------------------------------------------------------------------------------

def test_more_nodes_than_the_limit_are_refused_naming_the_setting(settings):
    settings.FLOW_MAX_NODES = 3
    data = flow_data(*(chat_in(f"In-{i}") for i in range(4)))
    assert structure_errors(data) == ["the flow has 4 nodes, more than FLOW_MAX_NODES (3)"]
    with pytest.raises(InvalidGraph, match="FLOW_MAX_NODES"):
        compile_graph(data)


def test_more_edges_than_the_limit_are_refused_naming_the_setting(settings):
    settings.FLOW_MAX_EDGES = 1
    data = flow_data(chat_in("A"), chat_in("B"), chat_out(), edge("A", "message", "ChatOutput-1", "input_value"),
                     edge("B", "message", "ChatOutput-1", "input_value"))
    with pytest.raises(InvalidGraph, match=r"2 edges, more than FLOW_MAX_EDGES \(1\)"):
        compile_graph(data)


def test_a_duplicate_edge_is_refused_naming_its_nodes():
    data = flow_data(chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "input_value"),
                     edge("ChatInput-1", "message", "ChatOutput-1", "input_value"))
    [problem] = structure_errors(data)
    assert "ChatInput-1 -> ChatOutput-1" in problem and "appears 2 times" in problem
    with pytest.raises(InvalidGraph, match="appears 2 times"):
        compile_graph(data)


def test_a_long_cycle_names_its_first_nodes_and_counts_the_rest_not_those_downstream():
    count = 900
    items = [prompt(f"P-{i}", "{a}", a="") for i in range(count)] + [chat_out()]
    items += [edge(f"P-{i}", "prompt", f"P-{(i + 1) % count}", "a") for i in range(count)]
    items.append(edge("P-5", "prompt", "ChatOutput-1", "input_value"))
    started = time.perf_counter()
    with pytest.raises(InvalidGraph) as error:
        compile_graph(flow_data(*items))
    assert time.perf_counter() - started < 2
    assert str(error.value).startswith("The flow has a cycle through these nodes: P-0, P-1,")
    assert f"and {count - 20:,} more" in str(error.value)
    assert len(error.value.node_ids) == 20 and "ChatOutput-1" not in error.value.node_ids


def test_nodes_between_two_cycles_are_named_and_those_after_them_are_not():
    data = flow_data(prompt("A", "{x}", x=""), prompt("B", "{x}", x=""), prompt("C", "{x}", x=""),
                     prompt("D", "{x}", x=""), prompt("E", "{x}", x=""), chat_out(),
                     edge("A", "prompt", "B", "x"), edge("B", "prompt", "A", "x"),  # a cycle
                     edge("B", "prompt", "C", "x"),  # C joins the cycles
                     edge("C", "prompt", "D", "x"), edge("D", "prompt", "C", "x"),  # another cycle
                     edge("D", "prompt", "E", "x"), edge("E", "prompt", "ChatOutput-1", "input_value"))
    with pytest.raises(InvalidGraph) as error:
        compile_graph(data)
    assert error.value.node_ids == ("A", "B", "C", "D")


# --- Run parameters ----------------------------------------------------------------------------------

def test_a_tweak_that_reaches_many_nodes_counts_once_per_node():
    items = [prompt(f"P-{i}", "") for i in range(50)] + [chat_out()]
    data = flow_data(*items, edge("P-0", "prompt", "ChatOutput-1", "input_value"))
    fields = {f"v{i}": "" for i in range(30)}
    tweak = {"Prompt": {"template": " ".join(f"{{{name}}}" for name in fields), **fields}}  # 31 fields x 50 nodes
    assert texts(run(data, limits(max_run_parameters=50 * 31), tweaks=tweak)) == {"ChatOutput-1": " " * 29}
    with pytest.raises(LimitExceeded, match=r"more than FLOW_MAX_RUN_PARAMETERS \(1,549\)"):
        run(data, limits(max_run_parameters=50 * 31 - 1), tweaks=tweak)


# --- Values --------------------------------------------------------------------------------------------

def test_one_placeholder_repeated_over_a_large_input_is_refused_before_it_is_built():
    data = prompt_flow("{q}" * 1000, q="")
    size = 1_000_000
    started = time.perf_counter()
    peak, outcome = peak_memory(lambda: run(data, inputs={"q": "x" * size}))
    assert time.perf_counter() - started < 1
    assert isinstance(outcome, LimitExceeded)
    assert str(outcome) == "Node Prompt-1: its output would be larger than FLOW_MAX_VALUE_BYTES (8,388,608 bytes)."
    assert outcome.node_ids == ("Prompt-1",) and outcome.status_code == 422
    assert peak < 12 * size  # never the gigabyte it asked for; a few copies of the input at most


def test_a_value_just_within_the_limit_is_built():
    data = prompt_flow("{q}{q}", q="")
    result = run(data, limits(max_value_bytes=2006), inputs={"q": "x" * 1000})  # template's 6 + 2 x 1000
    assert texts(result) == {"ChatOutput-1": "x" * 2000}
    with pytest.raises(LimitExceeded, match="Prompt-1"):
        run(data, limits(max_value_bytes=2005), inputs={"q": "x" * 1000})


def test_parser_patterns_over_many_items_are_bounded():
    items = [{"text": "x" * 100} for _ in range(1000)]
    data = flow_data(node("Parser-1", "ParserComponent", "Parser", input_data="", pattern="{text}" * 50,
                          mode="Parser", sep="\n"), chat_out(), edge("Parser-1", "parsed_text", "ChatOutput-1",
                                                                     "input_value"))
    with pytest.raises(LimitExceeded, match="Parser-1: its output would be larger than FLOW_MAX_VALUE_BYTES"):
        run(data, limits(max_value_bytes=1 * MiB), tweaks={"Parser-1": {"input_data": items}})


def test_a_long_template_of_empty_placeholders_over_many_items_is_bounded_too():
    # Renders nothing, yet each item would cost a pass over the template: counted as the template's size.
    items = [{"other": 1} for _ in range(20_000)]
    data = flow_data(node("Parser-1", "ParserComponent", "Parser", input_data="", pattern="{x}" * 20_000,
                          mode="Parser", sep=""), chat_out(), edge("Parser-1", "parsed_text", "ChatOutput-1",
                                                                   "input_value"))
    started = time.perf_counter()
    with pytest.raises(LimitExceeded, match="Parser-1"):
        run(data, limits(max_value_bytes=1 * MiB), tweaks={"Parser-1": {"input_data": items}})
    assert time.perf_counter() - started < 1


def test_stringify_of_a_large_item_is_measured_before_it_is_written():
    data = flow_data(node("Parser-1", "ParserComponent", "Parser", input_data="", pattern="", mode="Stringify"),
                     chat_out(), edge("Parser-1", "parsed_text", "ChatOutput-1", "input_value"))
    item = {"text": "\x01" * 200_000}  # 200 KB that JSON writes as 1.2 MB
    with pytest.raises(LimitExceeded, match="Parser-1"):
        run(data, limits(max_value_bytes=1 * MiB), tweaks={"Parser-1": {"input_data": item}})
    assert texts(run(data, limits(max_value_bytes=2 * MiB), tweaks={"Parser-1": {"input_data": item}}))


def test_a_chat_outputs_data_template_is_bounded():
    data = flow_data(chat_out(), chat_in())
    value = [{"text": "y" * 1000}] * 2000
    with pytest.raises(LimitExceeded, match="ChatOutput-1"):
        run(data, limits(max_value_bytes=1 * MiB),
            tweaks={"ChatOutput-1": {"input_value": value, "data_template": "{text}{text}"}})


def test_several_edges_into_one_field_are_joined_within_the_limit():
    data = flow_data(chat_in("A", "a" * 600), chat_in("B", "b" * 600), chat_out(),
                     edge("A", "message", "ChatOutput-1", "input_value"),
                     edge("B", "message", "ChatOutput-1", "input_value"))
    assert texts(run(data, limits(max_value_bytes=1201))) == {"ChatOutput-1": "a" * 600 + "\n" + "b" * 600}
    with pytest.raises(LimitExceeded, match="ChatOutput-1: its output would be larger than FLOW_MAX_VALUE_BYTES"):
        run(data, limits(max_value_bytes=1200))


def fan_in_chain(layers: int, text: str = "x" * 100) -> dict:
    """Two nodes per layer, each fed by both nodes of the layer before: the text doubles per layer."""
    items = [chat_in("A0", text), chat_in("B0", text)]
    for layer in range(1, layers + 1):
        for name in "AB":
            items.append(node(f"{name}{layer}", "ChatOutput", "Out", input_value=""))
            items += [edge(f"A{layer - 1}", "message", f"{name}{layer}", "input_value"),
                      edge(f"B{layer - 1}", "message", f"{name}{layer}", "input_value")]
    items += [chat_out("Final"), edge(f"A{layers}", "message", "Final", "input_value")]
    return flow_data(*items)


def test_a_chain_of_fan_in_layers_stops_at_the_limit_early():
    started = time.perf_counter()
    peak, outcome = peak_memory(lambda: run(fan_in_chain(40)))  # 100 x 2^40 bytes, were it built
    assert isinstance(outcome, LimitExceeded), outcome
    assert "FLOW_MAX_ANSWER_BYTES" in str(outcome) or "FLOW_MAX_VALUE_BYTES" in str(outcome)
    assert time.perf_counter() - started < 2
    assert peak < 3 * 32 * MiB


def test_a_run_whose_outputs_together_exceed_the_answer_limit_is_refused():
    data = flow_data(chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "input_value"))
    with pytest.raises(LimitExceeded, match=r"ChatOutput-1: its output would take the run's output past "
                                            r"FLOW_MAX_ANSWER_BYTES \(1,500 bytes\)"):
        run(data, limits(max_answer_bytes=1500), input_value="z" * 1000)


def test_the_answer_is_measured_before_it_is_rendered():
    data = flow_data(chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "input_value"))
    text = "\x01" * 10_000  # 10 KB of output, 60 KB per copy in JSON, several copies per answer
    result = run(data, limits(max_answer_bytes=200_000), input_value=text)
    with pytest.raises(LimitExceeded, match="The run's answer would be larger than FLOW_MAX_ANSWER_BYTES"):
        run_response(result)
    result = run(data, limits(max_answer_bytes=600_000), input_value=text)
    body = run_response(result)
    assert len(json.dumps(body, ensure_ascii=False)) <= result.budget.answered <= 600_000


def test_a_streamed_runs_events_count_towards_its_answer():
    data = flow_data(chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "input_value"))
    plan = plan_run(compile_graph(data), RunRequest(input_value="w" * 10_000, stream=True), flow_id="f",
                    limits=limits(max_answer_bytes=50_000))

    async def drain():
        names = []
        async for name, _ in execute(plan):
            names.append(name)
        return names

    # Each add_message event carries the text three times: the second message's event is too much.
    with pytest.raises(LimitExceeded, match="answer would be larger than FLOW_MAX_ANSWER_BYTES"):
        asyncio.run(drain())
    assert 30_000 < plan.context.budget.answered <= 50_000


# --- Time ------------------------------------------------------------------------------------------------

def test_a_run_past_its_time_budget_stops_before_the_next_node():
    data = flow_data(chat_in(), chat_out(), edge("ChatInput-1", "message", "ChatOutput-1", "input_value"))
    plan = plan_run(compile_graph(data), RunRequest(input_value="x"), flow_id="f", limits=limits(run_time_budget=0.05))
    time.sleep(0.06)
    with pytest.raises(LimitExceeded) as error:
        asyncio.run(run_to_end(plan))
    assert str(error.value) == ("The run took longer than FLOW_RUN_TIME_BUDGET (0.05 s) "
                                "(stopped at node ChatInput-1).")


def test_the_budget_starts_when_the_run_is_planned():
    budget = RunBudget(limits(run_time_budget=10))
    assert 9 < budget.remaining() <= 10 and not budget.expired()


# --- The pure helpers keep their meaning ---------------------------------------------------------------

def test_as_text_and_format_data_still_render_as_before():
    assert as_text([Message(text="a"), "b", {"text": "c"}, None, 5]) == "a\nb\nc\n\n5"
    assert format_data("{a}-{b}-{{lit}}", {"a": 1, "b": [1]}) == "1-[1]-{lit}"
    assert format_data("{a}", {"data": {"a": "x"}}) == "x"
    with pytest.raises(ValueError, match="use plain"):
        format_data("{a.b}", {"a": 1})


# --- The cache of compiled graphs ------------------------------------------------------------------------

def test_the_graph_cache_is_bounded_in_memory_not_only_in_count():
    from flows.engine import GraphCache

    def big(size):
        return compile_graph(prompt_flow("{q}" + "t" * size, q=""))

    small, large = big(10), big(100_000)
    assert large.weight - small.weight >= 100_000 - 10  # a graph weighs at least its values
    cache = GraphCache(size=100, max_bytes=3 * large.weight)
    for version in range(5):
        cache.put(("flow", version), big(100_000))
    assert cache.weight <= 3 * large.weight
    kept = cache._entries  # which versions survived (white box: the cache offers no membership test)
    assert ("flow", 4) in kept and ("flow", 3) in kept and ("flow", 0) not in kept
    cache.put(("huge", 0), big(1_000_000))  # heavier than the whole cache: compiled again each time
    assert ("huge", 0) not in kept and ("flow", 4) in kept
    assert cache.get(("flow", 4), lambda: pytest.fail("was cached")).weight == large.weight
    cache.clear()
    assert cache.weight == 0

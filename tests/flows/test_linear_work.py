"""Property tests: for random graphs, templates and inputs, the engine's time and memory grow at most
linearly with the request, and a request far over a limit is refused at once with memory flat.

Timings on a shared machine move, so each test compares one size with a larger one measured in the
same run (the best of a few tries each, in CPU time of this thread, which other processes do not
inflate): linear work grows about as much as the size, quadratic work as its square. The bounds
below leave room for noise yet fail any quadratic step.
"""

import asyncio
import gc
import random
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.engine import InvalidGraph, RunRequest, compile_graph, plan_run, run_to_end
from flows.engine.limits import LimitExceeded, Limits
from flows.engine.structure import structure_errors
from tests.flows.graphs import chat_out, edge, flow_data, node, prompt

MiB = 1024 * 1024
PROPERTIES = settings(max_examples=5, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.function_scoped_fixture])


def limits(**changes) -> Limits:
    values = {"max_nodes": 10_000, "max_edges": 50_000, "max_run_parameters": 10**7, "max_value_bytes": 64 * MiB,
              "max_answer_bytes": 256 * MiB, "run_time_budget": 600.0}
    return Limits(**{**values, **changes})


def best_time(work, tries: int = 3) -> float:
    """The shortest of ``tries`` runs of ``work()`` in CPU seconds, with the garbage collector held off."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(tries):
            started = time.thread_time()
            try:
                work()
            except (InvalidGraph, LimitExceeded):
                pass
            best = min(best, time.thread_time() - started)
    finally:
        gc.enable()
    return best


def peak_memory(work) -> int:
    tracemalloc.start()
    try:
        try:
            work()
        except (InvalidGraph, LimitExceeded):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_linear(small, large, factor: int, attempts: int = 3) -> None:
    """``large`` does ``factor`` times the work of ``small``: allow 3x that in time and in memory
    (tables grow by doubling), where quadratic work would take ``factor`` times more.

    A time is measured again (both sizes) when it misses: a burst of load on a shared machine can
    slow one measurement past the bound, but quadratic work misses it on every attempt."""
    timings = []
    for _ in range(attempts):
        time_small, time_large = best_time(small, 5), best_time(large)
        timings.append((time_small, time_large))
        if time_large <= 3 * factor * max(time_small, 1e-4):
            break
    else:
        raise AssertionError(f"not linear in {attempts} attempts (small, large seconds): {timings}")
    memory_small, memory_large = peak_memory(small), peak_memory(large)
    assert memory_large <= 3 * factor * max(memory_small, 64 * 1024), (memory_small, memory_large)


# --- Random graphs -----------------------------------------------------------------------------------

def random_graph(seed: int, size: int, fan_in: int, cycles: int) -> dict:
    """Prompt nodes in a chain (each feeds the next's ``c``), plus random forward edges (up to
    ``fan_in`` more per node, each into a field of its own) and ``cycles`` back edges, each of
    which closes a cycle; a Chat Output after the last node. Each prompt fills only ``{w}``, so a
    value keeps its size however deep the graph."""
    rng = random.Random(seed)
    items, links = [], []
    for index in range(size):
        sources = sorted(rng.sample(range(index - 1), min(max(index - 1, 0), rng.randint(0, fan_in))))
        fields = [f"v{n}" for n in range(len(sources))] + ["c", "w"]
        items.append(prompt(f"P-{index}", "step {w}", **dict.fromkeys(fields, "")))
        items[-1]["data"]["node"]["display_name"] = f"Step {index % 7}"
        links += [edge(f"P-{source}", "prompt", f"P-{index}", f"v{n}") for n, source in enumerate(sources)]
        if index:
            links.append(edge(f"P-{index - 1}", "prompt", f"P-{index}", "c"))
    for _ in range(cycles):
        later = rng.randrange(1, size)
        links.append(edge(f"P-{later}", "prompt", f"P-{rng.randrange(0, later)}", "w"))
    links.append(edge(f"P-{size - 1}", "prompt", "ChatOutput-1", "input_value"))
    unique = {(link["source"], link["target"], link["data"]["targetHandle"]["fieldName"]): link for link in links}
    return flow_data(*items, chat_out(), *unique.values())


def compile_plan_and_run(data: dict, request: dict) -> None:
    plan = plan_run(compile_graph(data), RunRequest(**request), flow_id="f", limits=limits())
    asyncio.run(run_to_end(plan))


@PROPERTIES
@given(seed=st.integers(0, 2**32), fan_in=st.integers(0, 3), cycles=st.sampled_from([0, 0, 1, 5]))
def test_graph_checks_compile_and_runs_are_linear_in_nodes_and_edges(settings, seed, fan_in, cycles):
    settings.FLOW_MAX_NODES, settings.FLOW_MAX_EDGES = 10_000, 50_000
    small, large = random_graph(seed, 100, fan_in, cycles), random_graph(seed, 800, fan_in, cycles)
    tweaks = {"Step 3": {"w": "tweaked"}, "w": "everywhere"}  # by display name, and by field
    assert_linear(lambda: compile_plan_and_run(small, {"tweaks": tweaks}),
                  lambda: compile_plan_and_run(large, {"tweaks": tweaks}), 8)


@PROPERTIES
@given(seed=st.integers(0, 2**32), ring=st.integers(1, 50))
def test_a_cycle_and_the_nodes_downstream_of_it_are_told_apart_in_linear_time(settings, seed, ring):
    settings.FLOW_MAX_NODES, settings.FLOW_MAX_EDGES = 10_000, 50_000

    def cycle_then_tail(size):
        """A cycle of ``ring`` nodes, then ``size`` nodes downstream of it, each fed by a random
        earlier one: none of those is on a cycle, and they must be peeled off in one pass."""
        rng = random.Random(seed)
        items = [prompt(f"P-{i}", "{a}", a="") for i in range(ring + size)]
        links = [edge(f"P-{i}", "prompt", f"P-{(i + 1) % ring}", "a") for i in range(ring)]
        links += [edge(f"P-{rng.randrange(max(0, i - 3), i)}", "prompt", f"P-{i}", "a")
                  for i in range(ring, ring + size)]
        return flow_data(*items, *links)

    small, large = cycle_then_tail(200), cycle_then_tail(2000)
    with pytest.raises(InvalidGraph) as error:
        compile_graph(large)
    assert set(error.value.node_ids) == {f"P-{i}" for i in range(min(ring, 20))}
    assert_linear(lambda: compile_graph(small), lambda: compile_graph(large), 10)


# --- Random templates and inputs -----------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
literals = st.text(st.characters(blacklist_characters="{}", blacklist_categories=["Cs"]), max_size=12)


@PROPERTIES
@given(pieces=st.lists(st.tuples(literals, names), min_size=1, max_size=5),
       value=st.text(st.characters(blacklist_categories=["Cs"]), max_size=20),
       double=st.booleans())
def test_prompt_templates_fill_in_time_and_memory_linear_in_their_variables(pieces, value, double):
    def request(copies: int):
        variables, template = {}, []
        for copy in range(copies):
            for literal, name in pieces:
                unique = f"{name}_{copy}"
                template.append(literal + ("{{%s}}" if double else "{%s}") % unique)
                variables[unique] = value
        data = flow_data(prompt(template="".join(template)), chat_out(),
                         edge("Prompt-1", "prompt", "ChatOutput-1", "input_value"))
        data["nodes"][0]["data"]["node"]["template"]["use_double_brackets"]["value"] = double
        return data, {"inputs": variables}

    (small, small_request), (large, large_request) = request(100), request(1000)
    assert_linear(lambda: compile_plan_and_run(small, small_request),
                  lambda: compile_plan_and_run(large, large_request), 10)


@PROPERTIES
@given(pattern=st.lists(st.one_of(literals, names.map(lambda name: f"{{{name}}}")), min_size=1, max_size=6),
       keys=st.lists(names, min_size=1, max_size=4), value=st.text(max_size=10))
def test_parser_patterns_render_in_time_and_memory_linear_in_their_items(pattern, keys, value):
    template = "".join(pattern)

    def request(count: int):
        data = flow_data(node("Parser-1", "ParserComponent", "Parser", input_data="", pattern=template,
                              mode="Parser", sep="\n"), chat_out(),
                         edge("Parser-1", "parsed_text", "ChatOutput-1", "input_value"))
        items = [{key: f"{value}{index}" for key in keys} for index in range(count)]
        return data, {"tweaks": {"Parser-1": {"input_data": items}}}

    (small, small_request), (large, large_request) = request(300), request(3000)
    assert_linear(lambda: compile_plan_and_run(small, small_request),
                  lambda: compile_plan_and_run(large, large_request), 10)


# --- Far over a limit: refused at once, memory flat -------------------------------------------------------

@PROPERTIES
@given(limit=st.integers(10_000, 200_000), repeat=st.integers(2, 50), text=st.text(min_size=1, max_size=5))
def test_a_value_ten_and_a_hundred_times_over_the_limit_is_refused_at_once_with_memory_flat(limit, repeat, text):
    value = (text * (limit // len(text) // repeat + 1))  # ``repeat`` copies of it reach the limit

    def over(times: int):
        data = flow_data(prompt(template="{q}" * (repeat * times), q=""), chat_out(),
                         edge("Prompt-1", "prompt", "ChatOutput-1", "input_value"))
        graph = compile_graph(data)
        return lambda: asyncio.run(run_to_end(plan_run(graph, RunRequest(inputs={"q": value}), flow_id="f",
                                                       limits=limits(max_value_bytes=limit))))

    ten, hundred = over(10), over(100)
    for attempt in (ten, hundred):
        try:
            attempt()
        except LimitExceeded as error:
            assert "FLOW_MAX_VALUE_BYTES" in str(error) and error.node_ids == ("Prompt-1",)
        else:
            raise AssertionError("not refused")
    assert best_time(ten) < 0.05 and best_time(hundred) < 0.05
    memory_ten, memory_hundred = peak_memory(ten), peak_memory(hundred)
    assert memory_hundred <= memory_ten + 64 * 1024 + 8 * repeat * 100  # the pieces' list, not the text
    assert memory_hundred < 4 * limit + 256 * 1024


@PROPERTIES
@given(factor=st.integers(10, 30))
def test_a_graph_many_times_over_the_node_limit_is_refused_at_once(settings, factor):
    settings.FLOW_MAX_NODES = 100
    data = flow_data(*(prompt(f"P-{i}", "{a}", a="") for i in range(100 * factor)))
    assert best_time(lambda: structure_errors(data)) < 0.005
    assert peak_memory(lambda: structure_errors(data)) < 16 * 1024
    assert structure_errors(data) == [f"the flow has {100 * factor:,} nodes, more than FLOW_MAX_NODES (100)"]

"""Split Text (flows.engine.components.split_text): chunk sizes and overlap as LangChain's
CharacterTextSplitter makes them, inputs of every shape, and the bounds."""

import asyncio
import time

import pytest

from flows.engine import FlowError, RunRequest, compile_graph, plan_run, run_to_end
from flows.engine.components.split_text import merge, pieces
from tests.flows.graphs import chat_in, edge, flow_data, node

SPLIT = "SplitText-1"


def split_flow(text="", **fields):
    values = {"chunk_size": 10, "chunk_overlap": 0, "separator": " ", "text_key": "text",
              "keep_separator": "False", "clean_output": False, "data_inputs": "", **fields}
    return flow_data(
        chat_in(value=text),
        node(SPLIT, "SplitText", "Split Text", **values),
        node("Parser-1", "parser", "Parser", input_data="", mode="Parser", pattern="[{text}]", sep="|"),
        edge("ChatInput-1", "message", SPLIT, "data_inputs"),
        edge(SPLIT, "dataframe", "Parser-1", "input_data"),
    )


def chunks(text, **fields) -> list[str]:
    plan = plan_run(compile_graph(split_flow(text, **fields)), RunRequest(output_component=SPLIT), flow_id="f")
    rows = asyncio.run(run_to_end(plan)).outputs[0].value
    return [row["text"] for row in rows]


def refusal(text, **fields) -> FlowError:
    with pytest.raises(FlowError) as caught:
        chunks(text, **fields)
    return caught.value


def test_words_are_packed_into_chunks_of_at_most_chunk_size():
    assert chunks("aaa bbb ccc ddd eee") == ["aaa bbb", "ccc ddd", "eee"]
    assert all(len(chunk) <= 10 for chunk in chunks("one two three four five six seven eight nine ten"))


def test_chunks_overlap_by_up_to_chunk_overlap():
    assert chunks("aaa bbb ccc ddd eee", chunk_overlap=4) == ["aaa bbb", "bbb ccc", "ccc ddd", "ddd eee"]


def test_a_piece_longer_than_chunk_size_is_a_chunk_of_its_own():
    assert chunks("tiny enormousword x", chunk_size=6) == ["tiny", "enormousword", "x"]


def test_newline_written_as_backslash_n_separates_lines():
    assert chunks("line one\nline two\nline three", separator="\\n", chunk_size=9) == [
        "line one", "line two", "line three"]


@pytest.mark.parametrize(("keep", "expected"), [
    ("False", ["a", "b", "c"]),
    ("True", ["a", ";b", ";c"]),
    ("Start", ["a", ";b", ";c"]),
    ("End", ["a;", "b;", "c"]),
])
def test_keep_separator(keep, expected):
    assert chunks("a;b;c", separator=";", chunk_size=1 if keep == "False" else 2, keep_separator=keep) == expected


def test_an_empty_separator_splits_between_characters():
    assert chunks("abcdefg", separator="", chunk_size=3) == ["abc", "def", "g"]


def test_matches_langchains_merge_on_a_longer_text():
    # Expected values from LangChain's CharacterTextSplitter(separator=" ", chunk_size=20,
    # chunk_overlap=8) (its _merge_splits, list slices and all, run on the same text).
    text = "the quick brown fox jumps over the lazy dog and runs far away into the woods"
    assert chunks(text, chunk_size=20, chunk_overlap=8) == [
        "the quick brown fox", "fox jumps over the", "over the lazy dog", "lazy dog and runs",
        "and runs far away", "far away into the", "into the woods"]


def test_the_output_is_a_dataframe_the_parser_reads():
    plan = plan_run(compile_graph(split_flow("aaa bbb ccc")), RunRequest(output_component="Parser-1"), flow_id="f")
    assert asyncio.run(run_to_end(plan)).outputs[0].value.text == "[aaa bbb]|[ccc]"


def test_dataframe_rows_keep_their_other_fields_unless_clean_output():
    data = flow_data(node(SPLIT, "SplitText", "Split Text", chunk_size=3, chunk_overlap=0, separator=" ",
                          text_key="content", clean_output=False,
                          data_inputs=[{"content": "ab cd", "file_path": "a.txt"}, {"content": "ef", "file_path": "b.txt"}]))
    plan = plan_run(compile_graph(data), RunRequest(output_component=SPLIT), flow_id="f")
    assert asyncio.run(run_to_end(plan)).outputs[0].value == [
        {"file_path": "a.txt", "text": "ab"}, {"file_path": "a.txt", "text": "cd"}, {"file_path": "b.txt", "text": "ef"}]
    plan = plan_run(compile_graph(data), RunRequest(output_component=SPLIT, tweaks={SPLIT: {"clean_output": True}}),
                    flow_id="f")
    assert asyncio.run(run_to_end(plan)).outputs[0].value == [{"text": "ab"}, {"text": "cd"}, {"text": "ef"}]


def test_a_text_key_the_input_lacks_is_a_422_naming_the_field():
    data = flow_data(node(SPLIT, "SplitText", "Split Text", text_key="body", data_inputs={"content": "x"}))
    with pytest.raises(FlowError) as caught:
        asyncio.run(run_to_end(plan_run(compile_graph(data), RunRequest(output_component=SPLIT), flow_id="f")))
    assert SPLIT in str(caught.value) and "'text_key'" in str(caught.value)


@pytest.mark.parametrize(("fields", "field"), [
    ({"chunk_size": 0}, "chunk_size"),
    ({"chunk_size": "big"}, "chunk_size"),
    ({"chunk_overlap": -1}, "chunk_overlap"),
    ({"chunk_size": 5, "chunk_overlap": 6}, "chunk_overlap"),
    ({"keep_separator": "Middle"}, "keep_separator"),
])
def test_bad_settings_are_a_422_naming_the_node_and_field(fields, field):
    error = refusal("a b c", **fields)
    assert error.status_code == 422 and SPLIT in str(error) and f"'{field}'" in str(error)


def test_tiny_chunks_of_a_large_text_stop_at_the_value_limit_quickly(settings):
    settings.FLOW_MAX_VALUE_BYTES = 100_000
    text = "x" * 90_000  # fits the limit; its one-character chunks, as rows, do not
    started = time.process_time()
    error = refusal(text, separator="", chunk_size=1)
    assert "FLOW_MAX_VALUE_BYTES" in str(error) and SPLIT in str(error)
    assert time.process_time() - started < 2


def test_a_large_overlap_is_bounded_by_the_value_limit(settings):
    settings.FLOW_MAX_VALUE_BYTES = 200_000
    error = refusal("y" * 50_000, separator="", chunk_size=1000, chunk_overlap=999)
    assert "FLOW_MAX_VALUE_BYTES" in str(error)


def test_pieces_are_read_lazily():
    parts = pieces("a b " * 10**6, " ", None)
    assert [next(parts) for _ in range(3)] == ["a", "b", "a"]


def test_merge_keeps_no_more_than_a_chunk_in_memory():
    merged = merge(iter(["ab"] * 10**6), "", 4, 2)
    assert [next(merged) for _ in range(3)] == ["abab", "abab", "abab"]

"""The graph's picture (flows.picture): layers left to right, rows by inputs, cycles and junk tolerated."""

import pytest

from flows import picture
from flows.picture import flow_picture


def _node(node_id, kind="ChatInput", name=None):
    inner = {"display_name": name} if name is not None else {}
    return {"id": node_id, "data": {"type": kind, "id": node_id, "node": inner}}


def _edge(source, target):
    return {"source": source, "target": target}


def _column(result, node_id):
    node = next(node for node in result.nodes if node.id == node_id)
    return (node.x - picture.PADDING) // (picture.NODE_WIDTH + picture.COLUMN_GAP)


def test_each_node_sits_one_column_right_of_its_furthest_input():
    data = {"nodes": [_node("a"), _node("b", "Prompt"), _node("c", "ChatOutput")],
            "edges": [_edge("a", "b"), _edge("b", "c"), _edge("a", "c")]}
    result = flow_picture(data)
    assert [_column(result, node_id) for node_id in "abc"] == [0, 1, 2]
    assert result.width == 2 * picture.PADDING + 3 * picture.NODE_WIDTH + 2 * picture.COLUMN_GAP
    assert result.summary == "3 components and 3 connections"


def test_nodes_of_one_column_do_not_overlap():
    data = {"nodes": [_node("in"), *(_node(f"n{i}", "Prompt") for i in range(4))],
            "edges": [_edge("in", f"n{i}") for i in range(4)]}
    boxes = sorted(node.y for node in flow_picture(data).nodes if node.id != "in")
    assert all(later - earlier >= picture.NODE_HEIGHT for earlier, later in zip(boxes, boxes[1:], strict=False))


def test_a_cycle_is_drawn_not_refused():
    data = {"nodes": [_node("a"), _node("b"), _node("c")], "edges": [_edge("a", "b"), _edge("b", "c"), _edge("c", "b")]}
    result = flow_picture(data)
    assert len(result.nodes) == 3 and len(result.edges) == 3


@pytest.mark.parametrize("data", [None, {}, {"nodes": "x"}, {"nodes": [], "edges": []}, {"nodes": [{"no": "id"}]}])
def test_nothing_to_draw_is_none(data):
    assert flow_picture(data) is None


def test_dangling_duplicate_and_self_edges_and_notes_are_left_out():
    note = {"id": "note-1", "type": "noteNode", "data": {"type": "note", "node": {}}}
    data = {"nodes": [_node("a"), _node("b"), note, "junk"],
            "edges": [_edge("a", "b"), _edge("a", "b"), _edge("a", "a"), _edge("a", "ghost"), "junk"]}
    result = flow_picture(data)
    assert [node.id for node in result.nodes] == ["a", "b"] and len(result.edges) == 1


def test_long_labels_are_shortened_and_kept_whole_in_the_title():
    name = "A very long component name that goes on"
    node = flow_picture({"nodes": [_node("a", name=name)], "edges": []}).nodes[0]
    assert node.label == name and len(node.short_label) == picture.LABEL_CHARS and node.short_label.endswith("…")


def test_unsupported_components_are_marked():
    result = flow_picture({"nodes": [_node("a", "AssemblyAITranscriber"), _node("b")], "edges": []})
    assert [node.supported for node in result.nodes] == [False, True]


def test_too_many_nodes_are_not_drawn():
    many = {"nodes": [_node(f"n{i}") for i in range(picture.MAX_NODES + 1)], "edges": []}
    assert flow_picture(many) is None


def test_a_long_chain_is_laid_out_in_linear_time():
    count = picture.MAX_NODES
    data = {"nodes": [_node(f"n{i}") for i in range(count)], "edges": [_edge(f"n{i}", f"n{i + 1}") for i in range(count - 1)]}
    result = flow_picture(data)
    assert _column(result, f"n{count - 1}") == count - 1


def test_narrow_graphs_shrink_to_fit_and_wide_ones_scroll():
    chain = {"nodes": [_node(f"n{i}") for i in range(4)], "edges": [_edge(f"n{i}", f"n{i + 1}") for i in range(3)]}
    assert flow_picture(chain).columns == 4 and not flow_picture(chain).is_scalable
    chain["edges"].pop()
    assert flow_picture(chain).columns == 3 and flow_picture(chain).is_scalable

"""Build small Langflow-shaped graphs for the engine tests."""


def node(node_id: str, kind: str, display_name: str | None = None, **values) -> dict:
    template = {name: {"type": "str", "value": value} for name, value in values.items()}
    template["code"] = {"type": "code", "value": "raise SystemExit('code must never run')"}
    return {
        "id": node_id,
        "type": "genericNode",
        "data": {"id": node_id, "type": kind, "node": {"display_name": display_name or kind, "template": template}},
    }


def edge(source: str, output: str, target: str, field: str) -> dict:
    return {
        "source": source,
        "target": target,
        "data": {"sourceHandle": {"id": source, "name": output}, "targetHandle": {"id": target, "fieldName": field}},
    }


def flow_data(*items: dict) -> dict:
    return {"nodes": [i for i in items if "source" not in i], "edges": [i for i in items if "source" in i]}


def chat_in(node_id="ChatInput-1", value="stored input", **kw):
    return node(node_id, "ChatInput", "Chat Input", input_value=value, sender="User", sender_name="User", **kw)


def chat_out(node_id="ChatOutput-1", **kw):
    return node(node_id, "ChatOutput", "Chat Output", input_value="", sender="Machine", sender_name="AI",
                data_template="{text}", **kw)


def prompt(node_id="Prompt-1", template="", **variables):
    return node(node_id, "Prompt", "Prompt", template=template, use_double_brackets=False, **variables)

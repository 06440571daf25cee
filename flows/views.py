"""The Flows pages: list, import, a flow with its nodes, Run box and API snippets, delete.

Every query goes through ``Flow.objects.visible_to`` / ``get_flow_for_request``, so another
user's flow is a 404 exactly like a missing one.
"""

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .engine import FlowError
from .engine.structure import is_comment_node
from .forms import FlowImportForm, RunFlowForm
from .models import Flow, FlowPermission
from .services import delete_flow, get_flow_for_request, import_flows, plan_run, run_planned

DELETE_CONSEQUENCE = "will be deleted: clients that call it over the API will get “Flow not found”. This cannot be undone."


def _render_list(request, *, import_form=None, status=200):
    """Render the flow list; with ``import_form``, the import dialog is rendered open."""
    flows = Flow.objects.visible_to(request.user, None, FlowPermission.READ).defer("data")
    context = {
        "flows": flows,
        "import_form": import_form or FlowImportForm(),
        "import_open": import_form is not None,
        "delete_consequence": DELETE_CONSEQUENCE,
    }
    return render(request, "flows/flow_list.html", context, status=status)


@never_cache
@login_required
@require_GET
def flow_list(request):
    return _render_list(request)


def _import_runnable_flows(user, payload) -> list[Flow]:
    """Import like ``import_flows``, but refuse (storing nothing) a flow this server could not run.

    The import service stores work in progress, as Langflow does; the page promises a clear
    error for unsupported components at upload time instead of at the first run. The service
    checks every flow before it writes any (no transaction held while a large graph is checked).
    """
    return import_flows(user=user, payload=payload, runnable_only=True)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def flow_import(request):
    """GET: the list with the import dialog open (the no-JavaScript path). POST: import, then redirect."""
    if request.method == "GET":
        return _render_list(request, import_form=FlowImportForm())
    form = FlowImportForm(request.POST, request.FILES)
    flows = None
    if form.is_valid():
        try:
            flows = _import_runnable_flows(request.user, form.cleaned_data["file"].read())
        except ValidationError as error:
            form.add_error("file", error.messages)
    if flows is None:
        return _render_list(request, import_form=form, status=400)
    names = ", ".join(f"“{flow.name}”" for flow in flows)
    messages.success(request, f"Imported {names}.")
    moved = [secret["variable"] for flow in flows for secret in getattr(flow, "moved_secrets", [])]
    if moved:
        messages.info(request, "Keys found in the flow were moved into Credential variables, which the flow now "
                               f"loads: {', '.join(moved)}. The flow itself no longer holds them.")
    return redirect("flows:detail", pk=flows[0].pk) if len(flows) == 1 else redirect("flows:list")


def _nodes(flow: Flow) -> list[dict]:
    """The flow's components (notes left out), as the page lists them."""
    nodes = []
    for node in flow.data.get("nodes", []):
        if is_comment_node(node):
            continue
        data = node.get("data", {})
        inner = data.get("node", {}) if isinstance(data.get("node"), dict) else {}
        nodes.append(
            {
                "id": node.get("id", ""),
                "type": data.get("type", ""),
                "display_name": inner.get("display_name") or data.get("display_name") or data.get("type", ""),
                "description": inner.get("description", ""),
                "variables": _variable_fields(inner.get("template")),
            }
        )
    return nodes


def _variable_fields(template) -> list[dict]:
    """The node's fields filled from a global variable at run time: the field's label and the variable's name."""
    if not isinstance(template, dict):
        return []
    return [
        {"field": spec.get("display_name") or name if isinstance(spec.get("display_name"), str) else name,
         "variable": spec["value"]}
        for name, spec in template.items()
        if isinstance(spec, dict) and spec.get("load_from_db") and isinstance(spec.get("value"), str) and spec["value"]
    ]


def _render_detail(request, flow, *, run_form=None, run_result=None, status=200):
    context = {
        "flow": flow,
        "nodes": _nodes(flow),
        "edge_count": len(flow.data.get("edges", [])),
        "run_form": run_form or RunFlowForm(),
        "run_result": run_result,
        "api_base_url": request.build_absolute_uri("/").rstrip("/"),
        "delete_consequence": DELETE_CONSEQUENCE,
    }
    return render(request, "flows/flow_detail.html", context, status=status)


@never_cache
@login_required
@require_GET
def flow_detail(request, pk):
    flow = get_flow_for_request(user=request.user, reference=pk)
    return _render_detail(request, flow)


def _output_text(response: dict) -> str:
    """The text a person reads from a run response: every output message, one after another."""
    texts = []
    for run_output in response.get("outputs", []):
        for output in run_output.get("outputs", []):
            results = output.get("results") or {}
            message = results.get("message")
            text = message.get("text") if isinstance(message, dict) else results.get("text")
            if text is not None:
                texts.append(str(text))
    return "\n\n".join(texts) if texts else "The flow ran but produced no chat output."


def _wants_json(request) -> bool:
    return request.headers.get("Accept") == "application/json"


def _plan_page_run(request, pk):
    """The run's synchronous half: the flow, the form, the plan; or the page's answer when it cannot run."""
    flow = get_flow_for_request(user=request.user, reference=pk, permission=FlowPermission.RUN)
    form = RunFlowForm(request.POST)
    if not form.is_valid():
        detail = "; ".join(form.errors["input_value"])
        if _wants_json(request):
            return None, JsonResponse({"detail": detail}, status=422)
        return None, _render_detail(request, flow, run_form=form, status=400)
    try:
        return (flow, form, plan_run(flow=flow, input_value=form.cleaned_data["input_value"])), None
    except FlowError as error:
        return None, _run_failed(request, flow, form, error)


def _run_failed(request, flow, form, error: FlowError):
    if _wants_json(request):
        return JsonResponse({"detail": str(error)}, status=error.status_code)
    return _render_detail(request, flow, run_form=form, run_result={"error": str(error)}, status=error.status_code)


def _run_done(request, flow, form, response: dict):
    output = _output_text(response)
    if _wants_json(request):
        return JsonResponse({"output": output})
    return _render_detail(request, flow, run_form=form, run_result={"output": output})


@never_cache
@login_required
@require_POST
async def flow_run(request, pk):
    """Run the flow as the signed-in user: JSON for the page's script, the page itself without it.

    Async like the API's run endpoints: the page and its queries are rendered on a thread,
    the wait on the model holds none.
    """
    planned, answer = await sync_to_async(_plan_page_run)(request, pk)
    if answer is not None:
        return answer
    flow, form, plan = planned
    try:
        response = await run_planned(plan)
    except FlowError as error:
        return await sync_to_async(_run_failed)(request, flow, form, error)
    return await sync_to_async(_run_done)(request, flow, form, response)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def flow_delete(request, pk):
    """GET: a confirmation page (the no-JavaScript path). POST: delete the flow."""
    flow = get_flow_for_request(user=request.user, reference=pk, permission=FlowPermission.WRITE, with_data=False)
    if request.method == "GET":
        context = {
            "title": "Delete flow?",
            "object_label": flow.name,
            "consequence": DELETE_CONSEQUENCE,
            "confirm_label": "Delete flow",
            "cancel_url": reverse("flows:detail", args=[flow.pk]),
        }
        return render(request, "confirm_delete.html", context)
    name = flow.name
    delete_flow(flow)
    messages.success(request, f"The flow “{name}” was deleted.")
    return redirect("flows:list")

"""The Flows pages: list, import, a flow with its nodes, Run box and API snippets, delete.

Every query goes through ``Flow.objects.visible_to`` / ``get_flow_for_request``, so another
user's flow is a 404 exactly like a missing one.
"""

import json
from contextlib import aclosing

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from users.middleware import mark_session_ended

from .catalog import supported_components
from .engine import FlowError
from .engine.structure import is_comment_node
from .forms import FlowImportForm, FlowReplaceForm, FlowSettingsForm, RunFlowForm
from .models import Flow, FlowPermission
from .picture import flow_picture
from .readiness import model_setup_warnings
from .services import (
    ImportRefused,
    delete_flow,
    export_entries,
    export_flow,
    get_flow_for_request,
    import_flows,
    plan_run,
    replace_flow_data,
    run_planned,
    run_problems,
    stream_planned,
    update_flow,
)
from .signals import notes_on_deleting

DELETE_CONSEQUENCE = "will be deleted: clients that call it over the API will get “Flow not found”. This cannot be undone."


SESSION_EXPIRED = "Your session expired. Sign in again, then run the flow again."


def _render_list(request, *, import_form=None, refusals=None, file_names=(), status=200):
    """Render the flow list; with ``import_form``, the import dialog is rendered open.

    ``refusals``: (file name, ImportRefused's Refusal) pairs, shown grouped by component."""
    flows = list(Flow.objects.visible_to(request.user, None, FlowPermission.READ).defer("data"))
    problems = run_problems(flows)
    for flow in flows:
        flow.run_problem = problems.get(flow.pk)
    context = {
        "flows": flows,
        "import_form": import_form or FlowImportForm(),
        "import_open": import_form is not None,
        "import_refusals": refusals or [],
        "import_file_names": list(file_names),
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
    """GET: the list with the import dialog open (the no-JavaScript path). POST: import, then redirect.

    Several files import together, all or nothing, like one file of several flows."""
    if request.method == "GET":
        return _render_list(request, import_form=FlowImportForm())
    form = FlowImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_list(request, import_form=form, status=400)
    uploads = form.cleaned_data["file"]
    file_names = [upload.name for upload in uploads]
    entries, origins, errors = [], [], []
    for upload in uploads:
        try:
            found = export_entries(upload.read())
        except ValidationError as error:
            errors += [f"{upload.name}: {message}" for message in error.messages]
            continue
        entries += found
        origins += [upload.name] * len(found)
    flows, refusals = None, None
    if not errors:
        try:
            flows = _import_runnable_flows(request.user, entries)
        except ImportRefused as refused:
            refusals = [(origins[refusal.index], refusal) for refusal in refused.refusals]
            errors.append("Nothing was imported: " + ("this flow uses" if len(refusals) == 1 else "these flows use")
                          + " components this server cannot run (below).")
        except ValidationError as error:
            prefix = f"{file_names[0]}: " if len(file_names) == 1 else ""
            errors += [prefix + message for message in error.messages]
    if flows is None:
        form.add_error("file", errors)
        return _render_list(request, import_form=form, refusals=refusals, file_names=file_names, status=400)
    names = ", ".join(f"“{flow.name}”" for flow in flows)
    messages.success(request, f"Imported {names}.")
    moved = [secret["variable"] for flow in flows for secret in getattr(flow, "moved_secrets", [])]
    if moved:
        messages.info(request, "Keys found in the flow were moved into Credential variables, which the flow now "
                               f"loads: {', '.join(moved)}. The flow itself no longer holds them.")
    return redirect("flows:detail", pk=flows[0].pk) if len(flows) == 1 else redirect("flows:list")


@never_cache
@login_required
@require_GET
def flow_components(request):
    """The components this server runs, grouped, and how to connect a model."""
    return render(request, "flows/components.html", {"groups": supported_components()})


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


def _render_detail(request, flow, *, run_form=None, run_result=None, settings_form=None, replace_form=None,
                   refusals=None, status=200):
    """The flow's page. A form given is rendered with its errors, its section open."""
    if settings_form is not None and settings_form.errors:
        flow.refresh_from_db(fields=["name", "endpoint_name", "description"])  # the page shows what is stored
    context = {
        "flow": flow,
        "nodes": _nodes(flow),
        "edge_count": len(flow.data.get("edges", [])),
        "picture": flow_picture(flow.data),
        "run_problem": run_problems([flow]).get(flow.pk),
        "model_warnings": model_setup_warnings(flow),
        "run_form": run_form or RunFlowForm(),
        "run_result": run_result,
        "settings_form": settings_form or FlowSettingsForm(instance=flow),
        "settings_open": settings_form is not None,
        "replace_form": replace_form or FlowReplaceForm(),
        "replace_open": replace_form is not None,
        "replace_refusals": refusals or [],
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
    return request.headers.get("Accept") in ("application/json", STREAM_TYPE)


STREAM_TYPE = "application/x-ndjson"


def _wants_stream(request) -> bool:
    return request.headers.get("Accept") == STREAM_TYPE


def _plan_page_run(request, pk):
    """The run's synchronous half: the flow, the form, the plan; or the page's answer when it cannot run."""
    flow = get_flow_for_request(user=request.user, reference=pk, permission=FlowPermission.RUN)
    form = RunFlowForm(request.POST)
    if not form.is_valid():
        if _wants_json(request):
            errors = {field: [str(message) for message in messages_] for field, messages_ in form.errors.items()}
            detail = "; ".join(message for messages_ in errors.values() for message in messages_)
            return None, JsonResponse({"detail": detail, "errors": errors}, status=422)
        return None, _render_detail(request, flow, run_form=form, status=400)
    try:
        plan = plan_run(flow=flow, input_value=form.cleaned_data["input_value"], tweaks=form.cleaned_data["tweaks"],
                        session_id=form.cleaned_data["session_id"] or None, stream=_wants_stream(request))
    except FlowError as error:
        return None, _run_failed(request, flow, form, error)
    return (flow, form, plan), None


def _run_failed(request, flow, form, error: FlowError):
    if _wants_json(request):
        return JsonResponse({"detail": str(error)}, status=error.status_code)
    return _render_detail(request, flow, run_form=form, run_result={"error": str(error)}, status=error.status_code)


def _run_done(request, flow, form, response: dict):
    output = _output_text(response)
    session_id = response.get("session_id") or ""
    if _wants_json(request):
        return JsonResponse({"output": output, "session_id": session_id})
    return _render_detail(request, flow, run_form=form, run_result={"output": output, "session_id": session_id})


def _page_stream(events) -> StreamingHttpResponse:
    """The Run box's stream: one JSON object a line. ``token`` (``chunk``) as the model writes,
    then ``end`` (``output``, ``session_id``) or ``error`` (``detail``, ``status``)."""

    async def lines():
        async with aclosing(events):
            async for event in events:
                name, data = event["event"], event.get("data") or {}
                if name == "token" and isinstance(data.get("chunk"), str):
                    line = {"event": "token", "chunk": data["chunk"]}
                elif name == "end":
                    result = data.get("result") or {}
                    line = {"event": "end", "output": _output_text(result), "session_id": result.get("session_id") or ""}
                elif name == "error":
                    line = {"event": "error", "detail": data.get("error", "The run failed."),
                            "status": data.get("status_code", 500)}
                else:
                    continue
                yield json.dumps(line, ensure_ascii=False) + "\n"

    response = StreamingHttpResponse(lines(), content_type=f"{STREAM_TYPE}; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let proxies pass the tokens on as they come
    return response


def _signed_out(request, pk):
    """A run posted after the session ended: the script is told so (401), a person signs in and
    comes back to the flow's page (never to the run URL, which answers POST only)."""
    if _wants_json(request):
        login = f"{reverse('login')}?next={reverse('flows:detail', args=[pk])}"
        response = JsonResponse({"detail": SESSION_EXPIRED, "code": "session_expired", "login_url": login}, status=401)
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            mark_session_ended(response)  # for the sign-in page: Django deletes the stale cookie on the way out
        return response
    return redirect_to_login(reverse("flows:detail", args=[pk]))


@never_cache
@require_POST
async def flow_run(request, pk):
    """Run the flow as the signed-in user: JSON (or a stream of JSON lines) for the page's script,
    the page itself without it.

    Async like the API's run endpoints: the page and its queries are rendered on a thread,
    the wait on the model holds none.
    """
    user = await request.auser()
    if not user.is_authenticated:
        return _signed_out(request, pk)
    planned, answer = await sync_to_async(_plan_page_run)(request, pk)
    if answer is not None:
        return answer
    flow, form, plan = planned
    if _wants_stream(request):
        try:
            events = await stream_planned(plan)
        except FlowError as error:
            return JsonResponse({"detail": str(error)}, status=error.status_code)
        return _page_stream(events)
    try:
        response = await run_planned(plan)
    except FlowError as error:
        return await sync_to_async(_run_failed)(request, flow, form, error)
    return await sync_to_async(_run_done)(request, flow, form, response)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def flow_settings(request, pk):
    """POST: rename the flow, change its endpoint name or description. GET (e.g. back from signing
    in): the flow's page, where the form is."""
    flow = get_flow_for_request(user=request.user, reference=pk, permission=FlowPermission.WRITE)
    if request.method == "GET":
        return redirect(reverse("flows:detail", args=[flow.pk]) + "#settings")
    form = FlowSettingsForm(request.POST, instance=flow)
    if form.is_valid():
        try:
            update_flow(flow, **{field: form.cleaned_data[field] for field in form.Meta.fields})
        except ValidationError as error:
            for field, errors in getattr(error, "message_dict", {"name": error.messages}).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"The flow “{flow.name}” was saved.")
            return redirect("flows:detail", pk=flow.pk)
    return _render_detail(request, flow, settings_form=form, status=400)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def flow_replace(request, pk):
    """POST: a new export of this flow replaces its graph (same id, name, endpoint name). GET: the page."""
    flow = get_flow_for_request(user=request.user, reference=pk, permission=FlowPermission.WRITE)
    if request.method == "GET":
        return redirect(reverse("flows:detail", args=[flow.pk]) + "#replace")
    form = FlowReplaceForm(request.POST, request.FILES)
    refusals = None
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            replace_flow_data(flow, upload.read())
        except ImportRefused as refused:
            refusals = [(upload.name, refusal) for refusal in refused.refusals]
            form.add_error("file", f"{upload.name} was not used: it holds components this server cannot run (below).")
        except ValidationError as error:
            form.add_error("file", [f"{upload.name}: {message}" for message in error.messages])
        else:
            messages.success(request, f"The flow “{flow.name}” now runs the graph of {upload.name}.")
            moved = [secret["variable"] for secret in getattr(flow, "moved_secrets", [])]
            if moved:
                messages.info(request, "Keys found in the flow were moved into Credential variables, which the flow "
                                       f"now loads: {', '.join(moved)}.")
            return redirect("flows:detail", pk=flow.pk)
        flow.refresh_from_db()
    return _render_detail(request, flow, replace_form=form, refusals=refusals, status=400)


@never_cache
@login_required
@require_GET
def flow_export(request, pk):
    """Download the flow as a Langflow export (.json), to import here or in Langflow."""
    flow = get_flow_for_request(user=request.user, reference=pk)
    body = json.dumps(export_flow(flow), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    filename = (slugify(flow.name) or "flow") + ".json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


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
            "note": notes_on_deleting(flow),  # e.g. the API keys it would leave reaching no flow
        }
        return render(request, "confirm_delete.html", context)
    name = flow.name
    delete_flow(flow)
    messages.success(request, f"The flow “{name}” was deleted.")
    return redirect("flows:list")

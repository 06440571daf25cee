"""The API Keys pages: list (search, filter, sort, bulk revoke), create (the secret shown once), a
key's own page (usage chart, request log, audit log, access, name and expiry, rotation with the new
secret shown once), revoke, and a run-only key made from a flow's page, for the signed-in user's keys.

Every response here is never_cache (``Cache-Control: no-store``): the page that shows a new key
must not be kept by the browser or a proxy, and the others are per-user.
"""

import csv
import datetime
import io
import re
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.net import client_ip
from flows.models import Flow

from . import access as key_access
from . import show_once
from .audit import describe
from .charts import usage_chart
from .forms import (
    DEFAULT_EXPIRY_DAYS,
    NEVER_EXPIRES_WARNING,
    PERMISSION_CHOICES,
    ApiKeyCreateForm,
    ApiKeyRotateForm,
    ApiKeySettingsForm,
    BulkRevokeForm,
    KeyAccessForm,
    KeyListFilterForm,
)
from .models import ApiKey, ApiKeyEvent
from .services import (
    KeyNotActive,
    acknowledge_leak_notice,
    audit_events,
    change_key_access,
    change_key_settings,
    create_api_key,
    daily_usage,
    request_log,
    revoke_api_key,
    revoke_api_keys,
    rotate_api_key,
)

DELETE_CONSEQUENCE = "will stop working immediately: every request that uses it will be refused. This cannot be undone."
BULK_REVOKE_CONSEQUENCE = ("will stop working immediately: every request that uses one of them will be refused. "
                           "This cannot be undone.")
KEYS_PER_PAGE = 50
EVENTS_PER_PAGE = 100
REQUESTS_ON_KEY_PAGE = 10
REQUESTS_PER_PAGE = 50
EXPIRING_SOON = datetime.timedelta(days=7)
FULL_KEY_IN_TEXT = re.compile(r"(lfsk_[0-9A-Za-z]{12})_[0-9A-Za-z]{6,}")
FLOW_KEY_PERMISSIONS = ("run",)


def _filtered_keys(user, filters: KeyListFilterForm):
    """The user's keys as the list's search, filter and sort ask (an invalid choice: the default)."""
    filters.is_valid()
    keys = ApiKey.objects.owned_by(user)
    query = (filters.value("q") or "").strip()
    if query:
        keys = keys.filter(Q(name__icontains=query) | Q(lookup_id__icontains=query.removeprefix("lfsk_")[:12]))
    now = timezone.now()
    usable = Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    state = filters.value("state")
    if state == "active":
        keys = keys.filter(usable)
    elif state == "attention":  # what to act on: reaching no flow, expiring within a week, an unread leak
        keys = keys.filter(
            (usable & Q(all_flows=False, flow_ids=[]))
            | (usable & Q(expires_at__lte=now + EXPIRING_SOON))
            | Q(revoked_by=ApiKey.RevokedBy.LEAK_REPORT, leak_acknowledged_at__isnull=True))
    elif state == "expired":
        keys = keys.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif state == "revoked":
        keys = keys.filter(revoked_at__isnull=False)
    if filters.value("hide_revoked") and state != "revoked":
        keys = keys.filter(revoked_at__isnull=True)
    sort = filters.value("sort")
    if sort in ("-last_used_at", "expires_at"):
        field = F(sort.lstrip("-"))
        keys = keys.order_by(field.desc(nulls_last=True) if sort.startswith("-") else field.asc(nulls_last=True),
                             "-created_at")
    else:
        keys = keys.order_by(sort, "-created_at")
    return keys


def _render_list(request, *, create_form=None, bulk_form=None, status=200):
    """Render the key list; with ``create_form``, the create dialog is rendered open.

    A key just created is shown here once (``show_once``), on the list's own URL only.
    """
    shown = show_once.take(request, page=request.path)
    filters = KeyListFilterForm(request.GET or None)
    owned = ApiKey.objects.owned_by(request.user)
    page = Paginator(_filtered_keys(request.user, filters), KEYS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "api_keys": page.object_list,
        "page_obj": page,
        "page_query": query.urlencode(),
        "has_keys": owned.exists(),
        "filtered": bool(request.GET.get("q") or request.GET.get("state") not in (None, "", "all")
                         or request.GET.get("hide_revoked")),
        "filters": filters,
        "leaked_keys": owned.filter(revoked_by=ApiKey.RevokedBy.LEAK_REPORT, leak_acknowledged_at__isnull=True),
        "new_key": shown.new_key,
        "create_form": create_form or ApiKeyCreateForm(owner=request.user),
        "create_open": create_form is not None,
        "never_expires_warning": NEVER_EXPIRES_WARNING,
        "bulk_form": bulk_form,
        "delete_consequence": DELETE_CONSEQUENCE,
        "bulk_consequence": BULK_REVOKE_CONSEQUENCE,
    }
    return shown.finish(render(request, "apikeys/apikey_list.html", context, status=status))


@never_cache
@login_required
@require_GET
def api_key_list(request):
    query = request.GET.get("q", "")
    if FULL_KEY_IN_TEXT.search(query):
        # A whole key pasted into the search: keep only its public part in the address (and so in
        # the browser's history and the server's access log); the rest of the search stays.
        cleaned = request.GET.copy()
        cleaned["q"] = FULL_KEY_IN_TEXT.sub(lambda match: match.group(1), query)
        return redirect(f"{reverse('apikeys:list')}?{cleaned.urlencode()}")
    return _render_list(request)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_key_create(request):
    """GET: the list with the create dialog open (the no-JavaScript path). POST: create, then redirect."""
    if request.method == "GET":
        return _render_list(request, create_form=ApiKeyCreateForm(owner=request.user))
    form = ApiKeyCreateForm(request.POST, owner=request.user)
    if not form.is_valid():
        return _render_list(request, create_form=form, status=400)
    api_key, raw_key = create_api_key(
        user=request.user, name=form.cleaned_data["name"], expires_at=form.expires_at(), access=form.access(),
        client_ip=client_ip(request),
    )
    if api_key.expires_at is None:
        messages.warning(request, NEVER_EXPIRES_WARNING)
    response = redirect("apikeys:list")
    show_once.stash(request, response, api_key=api_key, raw_key=raw_key, page=reverse("apikeys:list"))
    return response


def _render_detail(request, api_key, *, rotate_form=None, access_form=None, settings_form=None, status=200):
    """Render the key's page; a secret it was just rotated to is shown once, on that page's own URL only."""
    shown = show_once.take(request, page=request.path)
    events = audit_events(api_key)
    requests = request_log(api_key)
    context = {
        "api_key": api_key,
        "new_key": shown.new_key,
        "events": events[:EVENTS_PER_PAGE],
        "more_events": events[EVENTS_PER_PAGE:EVENTS_PER_PAGE + 1].exists(),
        "requests": _with_flows(request.user, list(requests[:REQUESTS_ON_KEY_PAGE])),
        "more_requests": requests[REQUESTS_ON_KEY_PAGE:REQUESTS_ON_KEY_PAGE + 1].exists(),
        "chart": usage_chart(daily_usage(api_key)),
        "rotate_form": rotate_form or ApiKeyRotateForm(),
        "rotate_open": rotate_form is not None,
        "settings_form": settings_form or ApiKeySettingsForm(initial={"name": api_key.name}),
        "settings_open": settings_form is not None,
        "access_form": access_form or KeyAccessForm(initial=KeyAccessForm.initial_for(api_key), owner=request.user),
        "access_open": access_form is not None,
        "scoped_flows": Flow.objects.owned_by(request.user).filter(pk__in=api_key.flow_ids).only("pk", "name"),
        "permission_labels": [label for value, label in PERMISSION_CHOICES if value in api_key.permissions],
        "delete_consequence": DELETE_CONSEQUENCE,
    }
    return shown.finish(render(request, "apikeys/apikey_detail.html", context, status=status))


def _with_flows(user, requests: list) -> list:
    """Give each logged request its ``flow`` (the user's flow its URL named, by id or endpoint name), or None."""
    refs = {entry.flow_ref for entry in requests if entry.flow_ref}
    flows = {}
    if refs:
        ids = [ref for ref in refs if _is_uuid(ref)]
        for flow in Flow.objects.owned_by(user).filter(Q(pk__in=ids) | Q(endpoint_name__in=refs)).only(
                "pk", "name", "endpoint_name"):
            flows[str(flow.pk)] = flow
            if flow.endpoint_name:
                flows[flow.endpoint_name] = flow
    for entry in requests:
        entry.flow = flows.get(entry.flow_ref)
    return requests


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@never_cache
@login_required
@require_GET
def api_key_detail(request, pk):
    """The key's own page. Another user's key is a 404, exactly like a key that does not exist."""
    return _render_detail(request, get_object_or_404(ApiKey.objects.owned_by(request.user), pk=pk))


@never_cache
@login_required
@require_POST
def api_key_rotate(request, pk):
    """Give the key a new secret, then show it once on the key's page (``show_once``).

    The page's form asks first (a dialog; without JavaScript, this view answers a confirmation
    page): only a POST with ``confirmed`` rotates.
    """
    api_key = get_object_or_404(ApiKey.objects.owned_by(request.user).select_related("user"), pk=pk)
    form = ApiKeyRotateForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, api_key, rotate_form=form, status=400)
    if not form.cleaned_data["confirmed"]:
        return render(request, "apikeys/confirm_rotate.html", {
            "api_key": api_key, "form": form, "consequence": form.consequence(),
            "cancel_url": reverse("apikeys:detail", kwargs={"pk": api_key.pk}),
        })
    try:
        api_key, raw_key = rotate_api_key(api_key, grace=form.grace(), expires_at=form.expires_at(),
                                          actor_user=request.user, client_ip=client_ip(request))
    except KeyNotActive as error:
        messages.error(request, str(error))
        return redirect("apikeys:detail", pk=api_key.pk)
    response = redirect("apikeys:detail", pk=api_key.pk)
    show_once.stash(request, response, api_key=api_key, raw_key=raw_key,
                    page=reverse("apikeys:detail", kwargs={"pk": api_key.pk}))
    return response


@never_cache
@login_required
@require_POST
def api_key_settings(request, pk):
    """Rename the key, or change its expiry (audited); a revoked or expired key keeps its expiry."""
    api_key = get_object_or_404(ApiKey.objects.owned_by(request.user).select_related("user"), pk=pk)
    form = ApiKeySettingsForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, api_key, settings_form=form, status=400)
    changes = {"name": form.cleaned_data["name"].strip()}
    expires_at = form.expires_at()
    if expires_at is not key_access.ABSENT:
        changes["expires_at"] = expires_at
    before = (api_key.name, api_key.expires_at)
    try:
        change_key_settings(api_key, **changes, actor=ApiKeyEvent.Actor.OWNER, actor_user=request.user,
                            client_ip=client_ip(request))
    except KeyNotActive as error:
        messages.error(request, str(error))
        return redirect("apikeys:detail", pk=api_key.pk)
    if (api_key.name, api_key.expires_at) == before:
        messages.info(request, "Nothing changed.")
    else:
        messages.success(request, "Saved.")
        if "expires_at" in changes and api_key.expires_at is None:
            messages.warning(request, NEVER_EXPIRES_WARNING)
    return redirect("apikeys:detail", pk=api_key.pk)


@never_cache
@login_required
@require_POST
def api_key_acknowledge_leak(request, pk):
    """Dismiss the notice of a leak report: the key stays revoked and marked "reported leaked"."""
    api_key = get_object_or_404(ApiKey.objects.owned_by(request.user), pk=pk)
    if acknowledge_leak_notice(api_key):
        messages.info(request, f"Noted. The key “{api_key.name or 'Untitled'}” stays revoked.")
    next_url = request.POST.get("next")
    allowed = {reverse("apikeys:list"), reverse("apikeys:detail", kwargs={"pk": api_key.pk})}
    return redirect(next_url if next_url in allowed else "apikeys:list")


@never_cache
@login_required
@require_POST
def api_key_access(request, pk):
    """Change which flows the key may use, what it may do and where from; each change is audited."""
    api_key = get_object_or_404(ApiKey.objects.owned_by(request.user).select_related("user"), pk=pk)
    form = KeyAccessForm(request.POST, owner=request.user)
    if not form.is_valid():
        return _render_detail(request, api_key, access_form=form, status=400)
    try:
        changes = change_key_access(api_key, form.access(), actor_user=request.user, client_ip=client_ip(request))
    except KeyNotActive as error:
        messages.error(request, str(error))
        return redirect("apikeys:detail", pk=api_key.pk)
    if changes:
        messages.success(request, "Access changed, from the next request on: "
                         + "; ".join(describe(event) for event in changes) + ".")
    else:
        messages.info(request, "Nothing changed.")
    return redirect("apikeys:detail", pk=api_key.pk)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_key_delete(request, pk):
    """GET: a confirmation page (the no-JavaScript path). POST: revoke the key at once.

    Another user's key is a 404, exactly like a key that does not exist.
    """
    api_key = get_object_or_404(ApiKey.objects.owned_by(request.user), pk=pk)
    label = api_key.name or "Untitled"
    if api_key.is_revoked:
        messages.info(request, f"The key “{label}” was already revoked.")
        return redirect("apikeys:list")
    if request.method == "GET":
        context = {
            "title": "Revoke secret key?",
            "object_label": f"{label} ({api_key.masked})",
            "consequence": DELETE_CONSEQUENCE,
            "confirm_label": "Revoke key",
            "cancel_url": reverse("apikeys:list"),
        }
        return render(request, "confirm_delete.html", context)
    revoke_api_key(api_key, revoked_by=ApiKey.RevokedBy.OWNER, actor_user=request.user, client_ip=client_ip(request))
    messages.success(request, f"The key “{label}” was revoked. Requests that use it are now refused.")
    return redirect("apikeys:list")


@never_cache
@login_required
@require_POST
def api_key_bulk_revoke(request):
    """Revoke the keys ticked on the list, once confirmed (a dialog; without JavaScript, a page)."""
    form = BulkRevokeForm(request.POST, owner=request.user)
    if not form.is_valid():
        for error in form.errors.get("ids", []):
            messages.error(request, str(error))
        return redirect("apikeys:list")
    chosen = form.chosen()
    if not form.cleaned_data["confirmed"]:
        return render(request, "apikeys/confirm_bulk_revoke.html", {
            "keys": chosen, "consequence": BULK_REVOKE_CONSEQUENCE, "cancel_url": reverse("apikeys:list"),
        })
    revoked = revoke_api_keys(request.user, [api_key.pk for api_key in chosen], client_ip=client_ip(request))
    count = len(revoked)
    messages.success(request, f"{count} key{'s' if count != 1 else ''} revoked. Requests that use "
                              f"{'them' if count != 1 else 'it'} are now refused.")
    return redirect("apikeys:list")


@never_cache
@login_required
@require_GET
def api_key_events(request, pk):
    """The key's whole audit log, a page of EVENTS_PER_PAGE at a time, newest first."""
    api_key = get_object_or_404(ApiKey.objects.owned_by(request.user), pk=pk)
    page = Paginator(audit_events(api_key), EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "apikeys/apikey_events.html", {"api_key": api_key, "page_obj": page,
                                                           "events": page.object_list})


CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (a key's name is the user's words)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_START) else text


@never_cache
@login_required
@require_GET
def api_key_events_csv(request, pk):
    """The key's whole audit log as CSV (UTC times), newest first."""
    api_key = get_object_or_404(ApiKey.objects.owned_by(request.user), pk=pk)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["time_utc", "event", "by", "by_user", "client_ip", "lookup_id", "detail"])
    for event in audit_events(api_key).iterator(chunk_size=2000):
        writer.writerow([_csv_cell(cell) for cell in (
            event.created_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), event.get_kind_display(),
            event.get_actor_display() if event.actor else "", event.actor_user or "", event.client_ip or "",
            event.lookup_id, describe(event))])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="api-key-{api_key.lookup_id}-audit-log.csv"'
    return response


@never_cache
@login_required
@require_GET
def api_key_requests(request, pk):
    """The key's logged requests, a page of REQUESTS_PER_PAGE at a time, newest first."""
    api_key = get_object_or_404(ApiKey.objects.owned_by(request.user), pk=pk)
    page = Paginator(request_log(api_key), REQUESTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "apikeys/apikey_requests.html", {
        "api_key": api_key, "page_obj": page, "requests": _with_flows(request.user, list(page.object_list)),
        "retention_days": settings.REQUEST_LOG_RETENTION_DAYS,
    })


@never_cache
@login_required
@require_POST
def flow_key_create(request, flow_pk):
    """A key for one flow, from its page's API panel: limited to it, run only, expiring in 30 days.

    For the page's script (``Accept: application/json``) the answer holds the key, once (as the
    API's create does; never cached); without JavaScript the key's page shows it once (``show_once``).
    """
    flow = get_object_or_404(Flow.objects.owned_by(request.user).only("pk", "name"), pk=flow_pk)
    try:
        terms = key_access.build_terms(request.user, all_flows=False, flow_ids=[str(flow.pk)],
                                       permissions=list(FLOW_KEY_PERMISSIONS), allowed_ips=[],
                                       expires_in_days=int(DEFAULT_EXPIRY_DAYS))
    except ValidationError as error:  # the flow went meanwhile
        messages.error(request, " ".join(error.messages))
        return redirect("flows:list")
    name = f"{flow.name} (run only)"[: ApiKey._meta.get_field("name").max_length]
    api_key, raw_key = create_api_key(user=request.user, name=name, expires_at=terms.expires_at,
                                      access=terms.access, client_ip=client_ip(request))
    detail_url = reverse("apikeys:detail", kwargs={"pk": api_key.pk})
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"api_key": raw_key, "name": api_key.name, "masked": api_key.masked,
                             "expires_at": api_key.expires_at, "url": detail_url})
    response = redirect(detail_url)
    show_once.stash(request, response, api_key=api_key, raw_key=raw_key, page=detail_url)
    return response

"""The API Keys pages: list, create (the secret shown once), a key's own page (usage chart,
audit log, access, rotation with the new secret shown once) and delete, for the signed-in user's keys.

Every response here is never_cache (``Cache-Control: no-store``): the page that shows a new key
must not be kept by the browser or a proxy, and the others are per-user.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.net import client_ip
from flows.models import Flow

from . import show_once
from .audit import describe
from .charts import usage_chart
from .forms import PERMISSION_CHOICES, ApiKeyCreateForm, ApiKeyRotateForm, KeyAccessForm
from .models import ApiKey
from .services import (
    KeyNotActive,
    audit_log,
    change_key_access,
    create_api_key,
    daily_usage,
    revoke_api_key,
    rotate_api_key,
)

DELETE_CONSEQUENCE = "will stop working immediately: every request that uses it will be refused. This cannot be undone."


def _render_list(request, *, create_form=None, status=200):
    """Render the key list; with ``create_form``, the create dialog is rendered open.

    A key just created is shown here once (``show_once``), on the list's own URL only.
    """
    shown = show_once.take(request, page=request.path)
    context = {
        "api_keys": ApiKey.objects.owned_by(request.user),
        "new_key": shown.new_key,
        "create_form": create_form or ApiKeyCreateForm(owner=request.user),
        "create_open": create_form is not None,
        "delete_consequence": DELETE_CONSEQUENCE,
    }
    return shown.finish(render(request, "apikeys/apikey_list.html", context, status=status))


@never_cache
@login_required
@require_GET
def api_key_list(request):
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
    response = redirect("apikeys:list")
    show_once.stash(request, response, api_key=api_key, raw_key=raw_key, page=reverse("apikeys:list"))
    return response


def _render_detail(request, api_key, *, rotate_form=None, access_form=None, status=200):
    """Render the key's page; a secret it was just rotated to is shown once, on that page's own URL only."""
    shown = show_once.take(request, page=request.path)
    context = {
        "api_key": api_key,
        "new_key": shown.new_key,
        "events": audit_log(api_key),
        "chart": usage_chart(daily_usage(api_key)),
        "rotate_form": rotate_form or ApiKeyRotateForm(),
        "access_form": access_form or KeyAccessForm(initial=KeyAccessForm.initial_for(api_key), owner=request.user),
        "access_open": access_form is not None,
        "scoped_flows": Flow.objects.owned_by(request.user).filter(pk__in=api_key.flow_ids).only("pk", "name"),
        "permission_labels": [label for value, label in PERMISSION_CHOICES if value in api_key.permissions],
        "delete_consequence": DELETE_CONSEQUENCE,
    }
    return shown.finish(render(request, "apikeys/apikey_detail.html", context, status=status))


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
    """Give the key a new secret, then show it once on the key's page (``show_once``)."""
    api_key = get_object_or_404(ApiKey.objects.owned_by(request.user).select_related("user"), pk=pk)
    form = ApiKeyRotateForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, api_key, rotate_form=form, status=400)
    try:
        api_key, raw_key = rotate_api_key(api_key, grace=form.grace(), actor_user=request.user,
                                          client_ip=client_ip(request))
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
        messages.info(request, f"The key “{label}” was already deleted.")
        return redirect("apikeys:list")
    if request.method == "GET":
        context = {
            "title": "Delete secret key?",
            "object_label": f"{label} ({api_key.masked})",
            "consequence": DELETE_CONSEQUENCE,
            "confirm_label": "Delete key",
            "cancel_url": reverse("apikeys:list"),
        }
        return render(request, "confirm_delete.html", context)
    revoke_api_key(api_key, revoked_by=ApiKey.RevokedBy.OWNER, actor_user=request.user, client_ip=client_ip(request))
    messages.success(request, f"The key “{label}” was deleted. Requests that use it are now refused.")
    return redirect("apikeys:list")

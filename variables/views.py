"""The Variables pages: list (type and mask), create, edit a value, delete with confirmation,
for the signed-in user's variables. Another user's variable is a 404 like a missing one.

Every response is never_cache: a form may have held a Credential on its way in.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from . import services
from .crypto import UndecryptableValue
from .forms import VariableCreateForm, VariableEditForm, add_service_error
from .models import Variable

DELETE_CONSEQUENCE = ("will be deleted: flows that load it will be refused until you create it again. "
                      "This cannot be undone.")


def _render_list(request, *, create_form=None, status=200):
    context = {
        "variables": Variable.objects.owned_by(request.user),
        "create_form": create_form or VariableCreateForm(),
        "create_open": create_form is not None,
        "delete_consequence": DELETE_CONSEQUENCE,
    }
    return render(request, "variables/variable_list.html", context, status=status)


@never_cache
@login_required
@require_GET
def variable_list(request):
    return _render_list(request)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def variable_create(request):
    """GET: the list with the create dialog open (the no-JavaScript path). POST: create, then redirect."""
    if request.method == "GET":
        return _render_list(request, create_form=VariableCreateForm())
    form = VariableCreateForm(request.POST)
    if form.is_valid():
        try:
            variable = services.create_variable(owner=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_error(form, "name", error)
        else:
            kind = "encrypted; its value will not be shown again" if variable.is_credential else "saved"
            messages.success(request, f"The variable “{variable.name}” was created ({kind}).")
            return redirect("variables:list")
    return _render_list(request, create_form=form, status=400)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def variable_edit(request, pk):
    """GET: the edit form (never the value). POST: set a new value and/or the fields it applies to."""
    variable = get_object_or_404(Variable.objects.owned_by(request.user), pk=pk)
    if request.method == "GET":
        form = VariableEditForm(initial={"default_fields": ", ".join(variable.default_fields)})
        return render(request, "variables/variable_edit.html", {"variable": variable, "form": form})
    form = VariableEditForm(request.POST)
    if form.is_valid():
        try:
            services.update_variable(variable, value=form.cleaned_data["value"],
                                     default_fields=form.cleaned_data["default_fields"])
        except (ValidationError, UndecryptableValue) as error:
            form.add_error("value", getattr(error, "messages", [str(error)]))
        else:
            messages.success(request, f"The variable “{variable.name}” was saved.")
            return redirect("variables:list")
    return render(request, "variables/variable_edit.html", {"variable": variable, "form": form}, status=400)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def variable_delete(request, pk):
    """GET: a confirmation page (the no-JavaScript path). POST: delete the variable."""
    variable = get_object_or_404(Variable.objects.owned_by(request.user), pk=pk)
    if request.method == "GET":
        context = {
            "title": "Delete variable?",
            "object_label": f"{variable.name} ({variable.type})",
            "consequence": DELETE_CONSEQUENCE,
            "confirm_label": "Delete variable",
            "cancel_url": reverse("variables:list"),
        }
        return render(request, "confirm_delete.html", context)
    services.delete_variable(variable)
    messages.success(request, f"The variable “{variable.name}” was deleted.")
    return redirect("variables:list")

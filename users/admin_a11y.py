"""Admin pages that pass axe (issue 16, WCAG 2.2 AA): what our ModelAdmins change in Django's widgets.

Django's split date/time widget (AdminSplitDateTime) prints "Date:" and "Time:" beside two inputs
that no <label> names (the field's label points at neither, as a MultiWidget has no single id):
axe's "label" rule, critical. Each half is named here after its field.
"""

from __future__ import annotations

from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils.text import capfirst


def label_split_datetime(widget: AdminSplitDateTime, label: str) -> None:
    """Name the date and the time inputs of ``widget`` after the field ("Expires at: date")."""
    for part, subwidget in zip(("date", "time"), widget.widgets, strict=True):
        subwidget.attrs["aria-label"] = f"{capfirst(label)}: {part}"


class AccessibleAdminMixin:
    """A ModelAdmin mixin: every split date/time field gets named inputs."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]
        if formfield is not None and isinstance(formfield.widget, AdminSplitDateTime):
            label_split_datetime(formfield.widget, str(formfield.label or db_field.verbose_name))
        return formfield

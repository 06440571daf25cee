"""The admin site, with its sign-in and password change under the sign-in throttle.

Installed as the default admin site by ``users.apps.SiteAdminConfig`` (in INSTALLED_APPS in place
of ``django.contrib.admin``). A lockout answers 429 with Retry-After, as on the site's own pages.
"""

from django.contrib import admin
from django.urls import reverse

from .forms import ThrottledAdminAuthenticationForm, ThrottledAdminPasswordChangeForm
from .views import ThrottledPasswordChangeView, answer_lockout


class SiteAdmin(admin.AdminSite):
    login_form = ThrottledAdminAuthenticationForm

    def login(self, request, extra_context=None):
        return answer_lockout(super().login(request, extra_context))

    def password_change(self, request, extra_context=None):
        """Django's admin password change, with the throttled form (Django's hard-codes its own)."""
        defaults = {
            "form_class": ThrottledAdminPasswordChangeForm,
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return answer_lockout(ThrottledPasswordChangeView.as_view(**defaults)(request))

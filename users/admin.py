from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .admin_a11y import AccessibleAdminMixin
from .models import User


@admin.register(User)
class SiteUserAdmin(AccessibleAdminMixin, UserAdmin):
    # Plain multiple selects for groups and permissions: Django's two-box filter (SelectFilter2.js)
    # names its search icons with aria-label on a bare <span>, which ARIA prohibits (axe, serious).
    filter_horizontal = ()

"""Variables in the admin: names, types and masks only. The value column is never a field here
(a Credential's ciphertext is of no use to read, and no value is shown after saving); values are
set by their owners on the Variables page or the API."""

from django.contrib import admin

from .models import Variable


@admin.register(Variable)
class VariableAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "type", "masked", "key_version", "updated_at"]
    list_filter = ["type", "key_version"]
    search_fields = ["name", "owner__username"]
    fields = readonly_fields = ("owner", "name", "type", "masked", "key_version", "default_fields", "created_at",
                                "updated_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

from django.contrib import admin

from .models import UserFile


@admin.register(UserFile)
class UserFileAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "size", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["name", "owner__username"]
    readonly_fields = ["id", "owner", "path", "size", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return False  # files come in through the API, within its limits

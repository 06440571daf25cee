from django.contrib import admin

from .models import Flow
from .services import delete_flow


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "endpoint_name", "updated_at"]
    list_filter = ["updated_at"]
    search_fields = ["name", "endpoint_name", "owner__username"]
    list_select_related = ["owner"]
    readonly_fields = ["id", "created_at", "updated_at"]
    fields = ["id", "owner", "name", "description", "endpoint_name", "data", "created_at", "updated_at"]

    def delete_model(self, request, obj):
        delete_flow(obj)  # also takes it out of the API keys limited to it

    def delete_queryset(self, request, queryset):
        for flow in queryset:
            delete_flow(flow)

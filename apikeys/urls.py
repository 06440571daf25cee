from django.urls import path

from . import views

app_name = "apikeys"

urlpatterns = [
    path("", views.api_key_list, name="list"),
    path("new/", views.api_key_create, name="create"),
    path("revoke/", views.api_key_bulk_revoke, name="bulk_revoke"),
    path("for-flow/<uuid:flow_pk>/", views.flow_key_create, name="create_for_flow"),
    path("<uuid:pk>/", views.api_key_detail, name="detail"),
    path("<uuid:pk>/rotate/", views.api_key_rotate, name="rotate"),
    path("<uuid:pk>/access/", views.api_key_access, name="access"),
    path("<uuid:pk>/settings/", views.api_key_settings, name="settings"),
    path("<uuid:pk>/acknowledge-leak/", views.api_key_acknowledge_leak, name="acknowledge_leak"),
    path("<uuid:pk>/events/", views.api_key_events, name="events"),
    path("<uuid:pk>/events.csv", views.api_key_events_csv, name="events_csv"),
    path("<uuid:pk>/requests/", views.api_key_requests, name="requests"),
    path("<uuid:pk>/revoke/", views.api_key_delete, name="revoke"),
    # The earlier address of Revoke, kept for links and bookmarks.
    path("<uuid:pk>/delete/", views.api_key_delete, name="delete"),
]

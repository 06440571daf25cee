from django.urls import path

from . import views

app_name = "flows"

urlpatterns = [
    path("", views.flow_list, name="list"),
    path("import/", views.flow_import, name="import"),
    path("components/", views.flow_components, name="components"),
    path("<uuid:pk>/", views.flow_detail, name="detail"),
    path("<uuid:pk>/run/", views.flow_run, name="run"),
    path("<uuid:pk>/edit/", views.flow_settings, name="settings"),
    path("<uuid:pk>/replace/", views.flow_replace, name="replace"),
    path("<uuid:pk>/export/", views.flow_export, name="export"),
    path("<uuid:pk>/delete/", views.flow_delete, name="delete"),
]

from django.urls import path

from . import views

app_name = "flows"

urlpatterns = [
    path("", views.flow_list, name="list"),
    path("import/", views.flow_import, name="import"),
    path("<uuid:pk>/", views.flow_detail, name="detail"),
    path("<uuid:pk>/run/", views.flow_run, name="run"),
    path("<uuid:pk>/delete/", views.flow_delete, name="delete"),
]

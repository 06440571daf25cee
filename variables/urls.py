from django.urls import path

from . import views

app_name = "variables"

urlpatterns = [
    path("", views.variable_list, name="list"),
    path("new/", views.variable_create, name="create"),
    path("<uuid:pk>/edit/", views.variable_edit, name="edit"),
    path("<uuid:pk>/delete/", views.variable_delete, name="delete"),
]

from django.urls import path

from . import views

app_name = "apikeys"

urlpatterns = [
    path("", views.api_key_list, name="list"),
    path("new/", views.api_key_create, name="create"),
    path("<uuid:pk>/", views.api_key_detail, name="detail"),
    path("<uuid:pk>/rotate/", views.api_key_rotate, name="rotate"),
    path("<uuid:pk>/access/", views.api_key_access, name="access"),
    path("<uuid:pk>/delete/", views.api_key_delete, name="delete"),
]

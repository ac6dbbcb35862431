"""URL configuration: the admin and the chat app."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("chat.web.urls")),
]

"""URL configuration: the admin, the rooms API and the chat app."""

from django.contrib import admin
from django.urls import include, path

from chat.web.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("chat.web.urls")),
]

"""URL configuration: the admin, the endpoints for programs and the pages."""

from django.contrib import admin
from django.urls import include, path

from chat.api.rooms import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("chat.api.urls")),
    path("", include("chat.web.urls")),
]

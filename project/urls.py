"""URL configuration: the admin, the endpoints for programs and the pages."""

from django.contrib import admin
from django.urls import include, path

from chat.api.rooms import api
from chat.web.accounts import login_limited

urlpatterns = [
    # The admin's log-in shares the people's limit on failed log-ins.
    path("admin/login/", login_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("chat.api.urls")),
    path("", include("chat.web.urls")),
]

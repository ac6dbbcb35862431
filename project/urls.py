"""URL configuration: the admin, the endpoints for programs and the pages."""

from django.contrib import admin
from django.urls import include, path

from chat.api.rooms import api
from chat.web.accounts import login_limited
from chat.web.languages import javascript_catalog

urlpatterns = [
    # The admin's log-in shares the people's limit on failed log-ins.
    path("admin/login/", login_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # Django's set_language (the footer's switcher) and the pages' JavaScript catalog.
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", javascript_catalog, name="javascript-catalog"),
    path("", include("chat.api.urls")),
    path("", include("chat.web.urls")),
]

"""The pages' JavaScript catalog: Parley's own messages in the request's language, cached."""

import functools
import gettext
import hashlib
from pathlib import Path

from django.conf import settings
from django.utils.translation import get_language, to_locale
from django.views.decorators.cache import cache_page
from django.views.i18n import JavaScriptCatalog

YEAR = 365 * 24 * 3600


@functools.cache
def catalog_version():
    """A digest of the compiled catalogs: the catalog's address and cache key change with them."""
    digest = hashlib.sha256()
    for directory in settings.LOCALE_PATHS:
        for compiled in sorted(Path(directory).glob("*/LC_MESSAGES/*.mo")):
            digest.update(compiled.parent.parent.name.encode() + compiled.read_bytes())
    return digest.hexdigest()[:12]


class Catalog(JavaScriptCatalog):
    """Parley's djangojs messages (its scripts' own), and its django ones (not Django's): frames are
    rendered once for a whole room with the message ids of the server's sentences, which the page's
    catalog then shows in its language (static/chat/parley.js)."""

    def get_catalog(self):
        for directory in settings.LOCALE_PATHS:
            self.translation.merge(gettext.translation("django", directory, [to_locale(get_language())], fallback=True))
        return super().get_catalog()


@functools.cache
def _view():
    # cache_page keys on the active language too; pages ask with their language and this version in
    # the query (base.html), so a browser never keeps one language's or one release's catalog for another.
    return cache_page(YEAR, key_prefix=f"jsi18n-{catalog_version()}")(Catalog.as_view(packages=["chat"]))


def javascript_catalog(request):
    """GET /jsi18n/: Django's JavaScript catalog of Parley's own messages (not Django's or the admin's)."""
    return _view()(request)

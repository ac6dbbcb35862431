"""A request that finds the database away: 503 with Retry-After, saying so, instead of a 500, for
pages and endpoints for programs alike (the rooms API hands these errors on to here).

PostgreSQL restarting or failing over, or SQLite's write lock held past its timeout, ends a request
with OperationalError (or InterfaceError on a connection that broke). That is not a bug of the
request: the client is told to try again shortly, a page in the reader's language without a
query of its own (the usual page's header lists rooms from the database), a program in JSON.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _

from chat.api.errors import error
from chat.web.answers import local_path, page_sent_from

logger = logging.getLogger(__name__)

RETRY_AFTER = 5  # seconds: a restart or a failover is usually over by then


class DatabaseUnavailable(MiddlewareMixin):
    """Answer a view's OperationalError or InterfaceError with 503 and Retry-After."""

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.warning("503 for %s %s: the database did not answer (%s: %s)", request.method, request.path,
                       type(exception).__name__, exception)
        if "html" in request.headers.get("Accept", ""):
            # Again: the same page, or after a form the page it was sent from.
            back = local_path(request.get_full_path()) if request.method == "GET" else page_sent_from(request)
            # Without the request: its context processors would ask the database again.
            response = HttpResponse(render_to_string("503.html", {"back": back}), status=503)
        else:
            response = error(_("The database is not answering; try again in a few seconds."), 503)
        response["Retry-After"] = str(RETRY_AFTER)
        return response

"""API keys on requests: `Authorization: Bearer <key>`, checked the same way by every endpoint for programs."""

from chat.api.errors import error
from chat.models import ApiKey

#: The challenge a refused request gets, in WWW-Authenticate.
CHALLENGE = 'Bearer realm="parley"'
LONGEST_KEY = 200
MISSING = 'Send an API key as "Authorization: Bearer <key>".'
MALFORMED = 'The Authorization header must carry an API key as "Bearer <key>".'
INVALID = "This API key is not valid (wrong, or revoked)."


class Unauthorized(Exception):
    """The request carries no usable key; str() says why."""


def bearer(request, *, required):
    """The live ApiKey the request carries (also set as request.api_key), None when it carries
    none and none is required, or Unauthorized."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header or (scheme.lower() != "bearer" and not required):
        # No key; another scheme (a proxy's Basic auth in front of the demo) is not ours to judge.
        if required:
            raise Unauthorized(MISSING)
        return None
    if scheme.lower() != "bearer" or not secret.strip() or len(secret) > LONGEST_KEY:
        raise Unauthorized(MALFORMED)
    key = ApiKey.objects.authenticate(secret.strip())
    if key is None:
        raise Unauthorized(INVALID)
    request.api_key = key
    return key


def unauthorized(problem):
    """401 with the JSON error saying why, and the scheme to use."""
    return error(str(problem), 401, WWW_Authenticate=CHALLENGE)

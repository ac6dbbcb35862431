"""API keys on requests: `Authorization: Bearer <key>`, checked before anything else a program asks."""

from django.http import JsonResponse

from chat.models import ApiKey


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
            raise Unauthorized('Send an API key as "Authorization: Bearer <key>".')
        return None
    if scheme.lower() != "bearer" or not secret.strip() or len(secret) > 200:
        raise Unauthorized('The Authorization header must be "Bearer <key>".')
    key = ApiKey.objects.authenticate(secret.strip())
    if key is None:
        raise Unauthorized("This API key is not valid (wrong, or revoked).")
    request.api_key = key
    return key


def unauthorized(problem):
    """401 with a JSON error, and the scheme to use."""
    response = JsonResponse({"error": str(problem)}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="parley"'
    return response

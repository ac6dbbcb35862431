"""How an endpoint for programs says no: JSON that says what to fix."""

from django.http import JsonResponse


def error(message, status, **headers):
    """{"error": message} with status; headers by keyword, `Retry_After` as `Retry-After`."""
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = str(value)
    return response

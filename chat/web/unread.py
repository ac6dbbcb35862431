"""What a room's page has read: POST /rooms/<room>/read, for the page's own person only (its
"Catch me up" button streams from chat.api.summaries, beside /chat)."""

from django.http import HttpResponse
from django.views.decorators.http import require_POST

from chat import access, unread
from chat.models import Message


@require_POST
def read(request, room):
    """The page's person has read the room as it stands: their position moves to its latest event; 204."""
    found = access.room_for(access.account(request), room)
    unread.mark(request, found.key, Message.objects.last_event(found.key))
    return HttpResponse(status=204)

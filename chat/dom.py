"""Element ids of the room page that Python, templates and JavaScript share: each spelled here once.

Templates read them as ``{{ ids.<name> }}`` (``chat.web.context_processors``); the page's
JavaScript reads the same table as JSON from the base template's ``<meta name="parley-ids">``.
"""

#: Ids of the elements frames and scripts address, by the name the code uses for them.
IDS = {
    "messages": "messages",  # the message list: new messages are prepended here
    "synced": "room_synced",  # up to when the page is in step with the room (catch-up's starting point)
    "presence": "presence",  # who is here
    "title": "room_name",  # the room's title, in its heading
    "page_title": "page_title",  # the window's title (<title>)
    "nav_room": "nav_room",  # the room switcher's link to the room the page shows
    "topic": "room_topic",  # the room's topic, under its title
    "heading": "room_heading",  # which title and topic the page shows (a mark): a reconnect sends it back
    "notice": "room_notice",  # a sentence for the whole page (moderation, refusals)
    "form_error": "form_error",  # why a post was refused
    "my_name": "my_name",  # "You post as ..."
    "profile_error": "profile_error",  # why a name was refused
    "mention_menu": "mention_menu",  # the composer's list of bots to call
    "composer": "content",  # the message box
    "new_message": "new_message",  # the composer's form
    "jump": "jump",  # "Jump to latest"
    "announcer": "announcer",  # the room's live region: what a screen reader reads out (static/chat/announce.js)
    "read_stream": "read_stream",  # the "Read replies as they stream" setting
    "unread_divider": "unread_divider",  # "New since your last visit", above the first unread message
    "catch_up": "catch_up",  # "Catch me up": the button and the summary streamed into this page alone
    "catch_up_summary": "catch_up_summary",
}


def message(pk):
    """The element id of message pk in a room page."""
    return f"message_{pk}"


def content(pk):
    """The element id of message pk's text, which streamed text grows."""
    return f"{message(pk)}_content"


def feedback(pk):
    """The element id of a finished reply's votes."""
    return f"{message(pk)}_feedback"


def feedback_error(pk):
    """The element id of the sentence refusing a vote on reply pk."""
    return f"{feedback(pk)}_error"

"""HTTP routes programs call besides the rooms API (mounted at /api/ by project/urls.py): /chat and /v1,
and the room page's "Catch me up", which streams as /chat does."""

from django.urls import path

from chat.api import completions, direct, summaries

app_name = "programs"

urlpatterns = [
    path("chat", direct.chat, name="chat"),
    path("rooms/<str:room>/catch-up", summaries.from_page, name="catch-up"),
    path("v1/models", completions.models, name="v1-models"),
    path("v1/chat/completions", completions.chat_completions, name="v1-chat-completions"),
]

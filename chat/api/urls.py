"""HTTP routes programs call besides the rooms API (mounted at /api/ by project/urls.py): /chat and /v1."""

from django.urls import path

from chat.api import completions, direct

app_name = "programs"

urlpatterns = [
    path("chat", direct.chat, name="chat"),
    path("v1/models", completions.models, name="v1-models"),
    path("v1/chat/completions", completions.chat_completions, name="v1-chat-completions"),
]

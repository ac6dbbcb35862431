"""HTTP routes of the rooms."""

from django.urls import path

from chat.web import completions, direct, moderation, people, views

app_name = "chat"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("rooms/<str:room>/", views.room, name="room"),
    path("rooms/<str:room>/messages", views.post_message, name="post"),
    path("rooms/<str:room>/messages/<int:pk>", views.message_frame, name="message"),
    path("rooms/<str:room>/messages/<int:pk>/stop", views.stop_message, name="stop"),
    path("rooms/<str:room>/messages/<int:pk>/retry", views.retry_message, name="retry"),
    path("rooms/<str:room>/messages/<int:pk>/feedback", people.feedback, name="feedback"),
    path("rooms/<str:room>/messages/<int:pk>/remove", moderation.remove_message, name="remove"),
    path("rooms/<str:room>/messages/<int:pk>/mute", moderation.mute_author, name="mute"),
    path("profile", people.profile, name="profile"),
    path("chat", direct.chat, name="chat"),
    path("direct/<str:bot>/", direct.page, name="direct"),
    path("v1/models", completions.models, name="v1-models"),
    path("v1/chat/completions", completions.chat_completions, name="v1-chat-completions"),
    path("healthz", views.healthz, name="healthz"),
]

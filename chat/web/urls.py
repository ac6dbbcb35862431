"""HTTP routes of the pages and forms people use."""

from django.urls import path

from chat.web import health, messages, moderation, pages, profile, votes

app_name = "chat"

urlpatterns = [
    path("", pages.lobby, name="lobby"),
    path("rooms/<str:room>/", pages.room, name="room"),
    path("rooms/<str:room>/messages", messages.post, name="post"),
    path("rooms/<str:room>/messages/<int:pk>", pages.message_frame, name="message"),
    path("rooms/<str:room>/messages/<int:pk>/stop", messages.stop, name="stop"),
    path("rooms/<str:room>/messages/<int:pk>/retry", messages.retry, name="retry"),
    path("rooms/<str:room>/messages/<int:pk>/feedback", votes.feedback, name="feedback"),
    path("rooms/<str:room>/messages/<int:pk>/remove", moderation.remove_message, name="remove"),
    path("rooms/<str:room>/messages/<int:pk>/mute", moderation.mute_author, name="mute"),
    path("profile", profile.profile, name="profile"),
    path("direct/<str:bot>/", pages.direct, name="direct"),
    path("healthz", health.healthz, name="healthz"),
]

"""HTTP routes of the rooms."""

from django.urls import path

from chat.web import direct, views

app_name = "chat"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("rooms/<str:bot>/", views.room, name="room"),
    path("rooms/<str:bot>/messages", views.post_message, name="post"),
    path("rooms/<str:bot>/messages/<int:pk>", views.message_frame, name="message"),
    path("rooms/<str:bot>/messages/<int:pk>/stop", views.stop_message, name="stop"),
    path("rooms/<str:bot>/messages/<int:pk>/retry", views.retry_message, name="retry"),
    path("chat", direct.chat, name="chat"),
    path("direct/<str:bot>/", direct.page, name="direct"),
    path("healthz", views.healthz, name="healthz"),
]

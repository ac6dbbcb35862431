"""HTTP routes of the pages and forms people use."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from chat.web import accounts, health, messages, moderation, pages, profile, rooms, search, unread, votes

app_name = "chat"

urlpatterns = [
    path("", pages.lobby, name="lobby"),
    path("rooms/new", rooms.new_room, name="new_room"),
    path("rooms/<str:room>/", pages.room, name="room"),
    path("rooms/<str:room>/members", rooms.members, name="members"),
    path("rooms/<str:room>/read", unread.read, name="read"),
    path("rooms/<str:room>/messages", messages.post, name="post"),
    path("rooms/<str:room>/messages/<int:pk>", pages.message_frame, name="message"),
    path("rooms/<str:room>/messages/<int:pk>/stop", messages.stop, name="stop"),
    path("rooms/<str:room>/messages/<int:pk>/retry", messages.retry, name="retry"),
    path("rooms/<str:room>/messages/<int:pk>/feedback", votes.feedback, name="feedback"),
    path("rooms/<str:room>/messages/<int:pk>/remove", moderation.remove_message, name="remove"),
    path("rooms/<str:room>/messages/<int:pk>/mute", moderation.mute_author, name="mute"),
    path("search", search.search_page, name="search"),
    path("profile", profile.profile, name="profile"),
    path("direct/<str:bot>/", pages.direct, name="direct"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/login/", accounts.login_limited(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/password_change/",
         auth_views.PasswordChangeView.as_view(success_url=reverse_lazy("chat:password_change_done")),
         name="password_change"),
    path("accounts/password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]

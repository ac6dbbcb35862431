"""The history panel: every message of every room, a room's transcript, and token usage by day."""

from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Max, Min, Sum
from django.db.models.functions import TruncDate
from django.shortcuts import render
from django.urls import path, reverse

from bots.registry import BOTS, get_bot_or_404
from chat.history.usage import usage_chart
from chat.models import Message, MessageQuerySet
from chat.replies import workers

TRANSCRIPT_LIMIT = 500


class RoomFilter(admin.SimpleListFilter):
    """Rooms from the registry: no DISTINCT over a million rows to list them."""

    title = "room"
    parameter_name = "bot__exact"

    def lookups(self, request, model_admin):
        return [(bot.key, bot.name) for bot in BOTS.values()]

    def queryset(self, request, queryset):
        return queryset.filter(bot=self.value()) if self.value() else queryset


class HistoryQuerySet(MessageQuerySet):
    """The admin's queryset: date drill-downs from MIN and MAX (two index lookups) instead of a
    DISTINCT over every row; a day without messages may show up as a link that lists nothing."""

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None:
            return []
        steps, current = [], first.replace(hour=0, minute=0, second=0, microsecond=0)
        if kind in ("month", "year"):
            current = current.replace(day=1)
        if kind == "year":
            current = current.replace(month=1)
        while current <= last and len(steps) < 400:
            steps.append(current)
            if kind == "day":
                current += timedelta(days=1)
            elif kind == "month":
                current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
            else:
                current = current.replace(year=current.year + 1)
        return steps if order == "ASC" else steps[::-1]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "bot", "role", "status", "author", "short_content", "model", "tokens", "created_at"]
    list_filter = [RoomFilter, "role", "status", "created_at"]
    search_fields = ["content", "author", "model"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "bot", "role", "status", "content", "error", "author", "model", "prompt_tokens", "completion_tokens",
        "created_at", "updated_at",
    ]
    actions = ["retry_replies"]
    list_per_page = 50
    show_full_result_count = False  # counting a million rows on every page is slow
    ordering = ["-id"]

    def get_queryset(self, request):
        # The admin's own queryset class, built as ModelAdmin.get_queryset builds the default one.
        queryset = HistoryQuerySet(self.model, using=self.model.objects.db)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def has_add_permission(self, request):
        return False  # messages come from rooms, not from the admin

    @admin.display(description="content")
    def short_content(self, message):
        return message.content[:80]

    @admin.display(description="tokens (prompt + completion)")
    def tokens(self, message):
        if message.prompt_tokens is None and message.completion_tokens is None:
            return "—"
        return f"{message.prompt_tokens or 0} + {message.completion_tokens or 0}"

    @admin.action(description="Retry the selected failed, cancelled or interrupted replies")
    def retry_replies(self, request, queryset):
        rooms, retried = set(), 0
        for message in queryset.filter(role=Message.Role.ASSISTANT, status__in=Message.RETRYABLE):
            if Message.objects.retry(message.pk):
                rooms.add(message.bot)
                retried += 1
        for bot_key in rooms:
            workers.request_reply(bot_key)
        self.message_user(request, f"{retried} replies will be answered again.", messages.SUCCESS)

    def get_urls(self):
        return [
            path("transcript/<str:bot>/", self.admin_site.admin_view(self.transcript), name="chat_message_transcript"),
            path("usage/", self.admin_site.admin_view(self.usage), name="chat_message_usage"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        links = [(bot.name, reverse("admin:chat_message_transcript", args=[bot.key])) for bot in BOTS.values()]
        extra = {"transcripts": links, "usage_url": reverse("admin:chat_message_usage"), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def transcript(self, request, bot):
        """A room's conversation in order, as people saw it (the latest TRANSCRIPT_LIMIT messages)."""
        found = get_bot_or_404(bot)
        latest = list(Message.objects.filter(bot=bot).order_by("-id")[:TRANSCRIPT_LIMIT])
        latest.reverse()
        context = {**self.admin_site.each_context(request), "bot": found, "messages_in_order": latest,
                   "title": f"Transcript: {found.name}", "opts": self.model._meta, "limit": TRANSCRIPT_LIMIT}
        return render(request, "admin/chat/transcript.html", context)

    def usage(self, request):
        """Tokens per room per day, from the usage recorded on replies, as a table and a chart."""
        rows = list(
            Message.objects.filter(role=Message.Role.ASSISTANT, completion_tokens__isnull=False)
            .annotate(day=TruncDate("created_at"))
            .values("day", "bot")
            .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
            .order_by("-day", "bot")[:366 * len(BOTS)]
        )
        context = {**self.admin_site.each_context(request), "rows": rows, "chart": usage_chart(rows),
                   "title": "Token usage by room and day", "opts": self.model._meta}
        return render(request, "admin/chat/usage.html", context)

"""The history panel: every message of every room, a room's transcript, and token usage by day."""

from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone

from bots import registry
from bots.registry import get_room_or_404
from chat.history.usage import usage_chart
from chat.models import ApiKey, Message, MessageQuerySet, Mute
from chat.replies import workers

TRANSCRIPT_LIMIT = 500


class RegistryFilter(admin.SimpleListFilter):
    """Entries of a registry (rooms, bots) to filter on: no DISTINCT over a million rows to list them."""

    field = ""

    def entries(self):
        """(key, label) pairs."""
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return self.entries()

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class RoomFilter(RegistryFilter):
    title, parameter_name, field = "room", "room__exact", "room"

    def entries(self):
        return [(room.key, room.title) for room in registry.rooms()]


class BotFilter(RegistryFilter):
    """The bot that wrote a reply."""

    title, parameter_name, field = "bot", "bot__exact", "bot"

    def entries(self):
        return [(bot.key, bot.name) for bot in registry.bots()]


class FeedbackFilter(admin.SimpleListFilter):
    """Replies by the votes people gave them."""

    title = "feedback"
    parameter_name = "feedback"

    def lookups(self, request, model_admin):
        return [("up", "voted up"), ("down", "voted down"), ("none", "finished, no votes")]

    def queryset(self, request, queryset):
        if self.value() == "up":
            return queryset.filter(up_votes__gt=0)
        if self.value() == "down":
            return queryset.filter(down_votes__gt=0)
        if self.value() == "none":
            return queryset.filter(role=Message.Role.ASSISTANT, status=Message.Status.COMPLETE, up_votes=0, down_votes=0)
        return queryset


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
    list_display = ["id", "room", "who", "role", "status", "short_content", "votes", "tokens", "removed", "created_at"]
    list_filter = [RoomFilter, BotFilter, "role", "status", FeedbackFilter, ("removed_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["content", "author", "model"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "room", "bot", "role", "status", "content", "error", "author", "sender", "model", "prompt_tokens",
        "completion_tokens", "up_votes", "down_votes", "removed_at", "removed_by", "created_at", "updated_at",
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

    @admin.display(description="who")
    def who(self, message):
        return message.author_name or message.bot

    @admin.display(description="👍 / 👎")
    def votes(self, message):
        return f"{message.up_votes} / {message.down_votes}" if message.takes_feedback else "—"

    @admin.display(description="removed", boolean=True)
    def removed(self, message):
        return message.removed_at is not None

    @admin.display(description="tokens (prompt + completion)")
    def tokens(self, message):
        if message.prompt_tokens is None and message.completion_tokens is None:
            return "—"
        return f"{message.prompt_tokens or 0} + {message.completion_tokens or 0}"

    @admin.action(description="Retry the selected failed, cancelled or interrupted replies")
    def retry_replies(self, request, queryset):
        rooms, retried = set(), 0
        for message in queryset.filter(role=Message.Role.ASSISTANT, status__in=Message.RETRYABLE, removed_at__isnull=True):
            if Message.objects.retry(message.pk):
                rooms.add(message.room)
                retried += 1
        for room_key in rooms:
            workers.request_reply(room_key)
        self.message_user(request, f"{retried} replies will be answered again.", messages.SUCCESS)

    def get_urls(self):
        return [
            path("transcript/<str:room>/", self.admin_site.admin_view(self.transcript), name="chat_message_transcript"),
            path("usage/", self.admin_site.admin_view(self.usage), name="chat_message_usage"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        links = [(room.title, reverse("admin:chat_message_transcript", args=[room.key])) for room in registry.rooms()]
        extra = {"transcripts": links, "usage_url": reverse("admin:chat_message_usage"), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def transcript(self, request, room):
        """A room's conversation in order, as people saw it (the latest TRANSCRIPT_LIMIT messages)."""
        found = get_room_or_404(room)
        latest = list(Message.objects.filter(room=found.key).order_by("-id")[:TRANSCRIPT_LIMIT])
        latest.reverse()
        context = {**self.admin_site.each_context(request), "room": found, "messages_in_order": latest,
                   "title": f"Transcript: {found.title}", "opts": self.model._meta, "limit": TRANSCRIPT_LIMIT}
        return render(request, "admin/chat/transcript.html", context)

    def usage(self, request):
        """Tokens and votes per bot per day, from the finished replies, as a table and a chart."""
        rows = list(
            # Finished replies, and failed ones that still cost tokens.
            Message.objects.filter(role=Message.Role.ASSISTANT)
            .filter(Q(status=Message.Status.COMPLETE) | Q(completion_tokens__isnull=False))
            .annotate(day=TruncDate("created_at"))
            .values("day", "bot")
            .annotate(
                replies=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"),
                up=Sum("up_votes"), down=Sum("down_votes"),
            )
            .order_by("-day", "bot")[:366 * len(registry.bots())]
        )
        context = {**self.admin_site.each_context(request), "rows": rows, "chart": usage_chart(rows),
                   "title": "Token usage and feedback by bot and day", "opts": self.model._meta}
        return render(request, "admin/chat/usage.html", context)


@admin.register(Mute)
class MuteAdmin(admin.ModelAdmin):
    """Who is muted until when, and by whom; lifting a mute ends it now."""

    list_display = ["author", "sender", "address", "until", "in_force", "created_by", "created_at"]
    list_filter = ["until"]
    search_fields = ["author", "sender", "address"]
    readonly_fields = ["sender", "author", "address", "created_by", "created_at"]
    actions = ["lift"]
    ordering = ["-until"]

    def has_add_permission(self, request):
        return False  # mutes are made from a room's page, on a message

    @admin.display(description="in force", boolean=True)
    def in_force(self, mute):
        return mute.until > timezone.now()

    @admin.action(description="Lift the selected mutes now")
    def lift(self, request, queryset):
        lifted = queryset.filter(until__gt=timezone.now()).update(until=timezone.now())
        self.message_user(request, f"{lifted} mutes lifted.", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys for programs: named and created here (the key is shown once, on creation), revoked by an action."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at", "prompt_tokens", "completion_tokens"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at", "prompt_tokens", "completion_tokens"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at", "prompt_tokens", "completion_tokens"]
    actions = ["revoke"]
    raw_id_fields = ("user",)  # a select of every account does not scale

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, secret = ApiKey.objects.issue(obj.name, user=obj.user)
        obj.pk, obj.prefix, obj.digest, obj.created_at = key.pk, key.prefix, key.digest, key.created_at
        obj.secret = secret  # for response_add alone: it is never stored

    def response_add(self, request, obj, post_url_continue=None):
        """The new key, once, in this response's body: not in a message, which would carry it in a cookie."""
        context = {**self.admin_site.each_context(request), "key": obj, "secret": obj.secret,
                   "title": f"The key for {obj.name}", "opts": self.model._meta}
        # The admin's views send Cache-Control: no-store, so no cache keeps the page either.
        return render(request, "admin/chat/apikey/issued.html", context)

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key's name stays on what it posted

    @admin.action(description="Revoke the selected keys now")
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{revoked} keys revoked.", messages.SUCCESS)

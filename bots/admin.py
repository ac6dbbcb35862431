"""The admin for bots and rooms: staff make and edit them here; every process sees an edit at its next look."""

import os

from django.contrib import admin
from django.db import models

from bots.models import Bot, Membership, Room


class KeyFixedOnceMade:
    """A key names history (messages keep their room's and bot's keys) and URLs: it is chosen once."""

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), *(("key",) if obj is not None else ()))


@admin.register(Bot)
class BotAdmin(KeyFixedOnceMade, admin.ModelAdmin):
    list_display = ["key", "name", "provider_in_force", "model", "key_variable", "active"]
    list_filter = ["active"]
    search_fields = ["key", "name", "description"]
    fieldsets = (
        (None, {"fields": ("key", "name", "description", "persona", "active")}),
        ("Model", {"fields": ("provider", "model", "base_url", "api_key_env", "temperature", "max_tokens", "context_tokens")}),
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"  # a base URL typed without a scheme; type http:// for a server nearby
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="provider")
    def provider_in_force(self, bot):
        return bot.provider or "(default)"

    @admin.display(description="key variable")
    def key_variable(self, bot):
        # Whether the variable is set in this process, never its value.
        if not bot.api_key_env:
            return "(OPENAI_API_KEY)"
        return f"{bot.api_key_env} ({'set' if os.environ.get(bot.api_key_env) else 'not set here'})"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    raw_id_fields = ("user",)


@admin.register(Room)
class RoomAdmin(KeyFixedOnceMade, admin.ModelAdmin):
    list_display = ["key", "title", "bot", "visibility", "created_by"]
    list_filter = ["visibility"]
    search_fields = ["key", "title", "topic"]
    raw_id_fields = ("created_by",)
    inlines = (MembershipInline,)

    def has_delete_permission(self, request, obj=None):
        # A room's messages are kept under its key: deleted, the key could be made again by anyone,
        # its history with it. Make a room members-only with no members to close it.
        return False

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

"""Bots and rooms as rows: staff edit them in the admin, the registry reads them for the rest of the code."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

BOT_KEY = RegexValidator(
    r"^[A-Za-z][A-Za-z0-9_]{1,31}$",
    "A bot's key is 2 to 32 letters, digits or underscores, starting with a letter (it is how @Key mentions it).",
)
ROOM_KEY = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$",
    _("A room's key is 1 to 40 letters, digits, hyphens or underscores, starting with a letter or digit."),
)
ENV_NAME = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]{0,99}$",
    "Give the name of an environment variable (letters, digits, underscores), never the key itself.",
)
# Room keys that are words of Parley's own URLs under /rooms/ (lower case; compared without regard to case).
RESERVED_ROOM_KEYS = frozenset({"new", "members", "messages", "search", "api", "admin", "accounts", "static", "ws"})


class Bot(models.Model):
    """A personality with its own model: empty provider, model, base URL or key variable mean the settings' defaults."""

    key = models.CharField(
        max_length=32, unique=True, validators=[BOT_KEY], help_text="How a message mentions it: @Key."
    )
    name = models.CharField("display name", max_length=80)
    description = models.CharField(max_length=300, blank=True, default="")
    persona = models.TextField(help_text="The system prompt: who the bot is and how it speaks.")
    provider = models.CharField(
        max_length=200, blank=True, default="",
        help_text="local, openai, or the dotted path of a Provider class; empty: LLM_PROVIDER's choice.",
    )
    model = models.CharField(
        "model name", max_length=200, blank=True, default="",
        help_text="The model the provider asks for; empty: OPENAI_MODEL (the embedded model when local).",
    )
    base_url = models.URLField(
        "base URL", max_length=300, blank=True, default="",
        help_text="An OpenAI-compatible server's URL; empty: OPENAI_BASE_URL.",
    )
    api_key_env = models.CharField(
        "API key variable", max_length=100, blank=True, default="", validators=[ENV_NAME],
        help_text="The NAME of the environment variable holding the key (never the key); empty: OPENAI_API_KEY.",
    )
    temperature = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text="Sampling temperature, 0 to 2; empty: the model's default.",
    )
    max_tokens = models.PositiveIntegerField(
        "most tokens per reply", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Empty: REPLY_MAX_TOKENS.",
    )
    context_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(256)],
        help_text="The model's context window in tokens; empty: the provider's setting.",
    )
    active = models.BooleanField(default=True, help_text="An inactive bot cannot be mentioned or chosen.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                Lower("key"), name="bots_bot_key_any_case",
                violation_error_message="A bot with this key already exists (keys are compared without regard to case).",
            ),
        ]

    def __str__(self):
        return self.key

    def validate_unique(self, exclude=None):
        # The case-insensitive constraint says it in a sentence; the exact key's own check would say it twice.
        super().validate_unique(exclude={*(exclude or ()), "key"})

    def clean(self):
        from bots.providers.base import key_variable_problem

        if self.api_key_env and (problem := key_variable_problem(self.api_key_env)):
            raise ValidationError({"api_key_env": problem})
        if self.provider:
            from bots.providers import provider_class

            try:
                provider_class(self.provider)
            except ImproperlyConfigured as exc:
                raise ValidationError({"provider": str(exc)}) from None


class Room(models.Model):
    """A live room: its key is its URL segment and Channels group; its own bot answers messages that mention none."""

    # What people see of a room's fields (the new-room form, the members page) is said in their language.
    class Visibility(models.TextChoices):
        PUBLIC = "public", _("Public: anyone, guests included")
        MEMBERS = "members", _("Members: signed-in members only")

    key = models.CharField(
        _("key"), max_length=40, unique=True, validators=[ROOM_KEY],
        # Help texts are HTML in Django's forms and admin: no angle brackets.
        help_text=_("Its address: /rooms/KEY/. Letters, digits, hyphens and underscores."),
    )
    title = models.CharField(_("title"), max_length=80)
    topic = models.CharField(_("topic"), max_length=300, blank=True, default="")
    bot = models.ForeignKey(
        Bot, null=True, blank=True, on_delete=models.SET_NULL, related_name="rooms", verbose_name=_("bot"),
        help_text=_("Answers a message that mentions no bot; empty: bots answer only when mentioned."),
    )
    visibility = models.CharField(_("visibility"), max_length=16, choices=Visibility.choices, default=Visibility.PUBLIC)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="rooms_created"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="rooms", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                Lower("key"), name="bots_room_key_any_case",
                violation_error_message=_("A room with this key already exists (keys are compared without regard to case)."),
            ),
        ]

    def __str__(self):
        return self.key

    def validate_unique(self, exclude=None):
        # The case-insensitive constraint says it in a sentence; the exact key's own check would say it twice.
        super().validate_unique(exclude={*(exclude or ()), "key"})

    @property
    def group(self):
        """The Channels group every page of the room listens on."""
        return f"{self.key}.messages"

    def clean(self):
        errors = {}
        if self.key and self.key.lower() in RESERVED_ROOM_KEYS:
            errors["key"] = _("%(key)r is a word Parley's own URLs use; choose another key.") % {"key": self.key}
        if self.bot_id is not None and self.bot is not None and not self.bot.active:
            errors["bot"] = _("%(bot)s is inactive; choose an active bot or none.") % {"bot": self.bot.key}
        if errors:
            raise ValidationError(errors)


class Membership(models.Model):
    """A person's place in a room: a member reads and posts; a moderator also manages members and messages."""

    class Role(models.TextChoices):
        MEMBER = "member", _("Member")
        MODERATOR = "moderator", _("Moderator")

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room", "user"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "user"], name="bots_membership_once",
                violation_error_message=_("This person is already a member of this room."),
            ),
        ]

    def __str__(self):
        return f"{self.user} in {self.room} ({self.role})"

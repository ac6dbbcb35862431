"""API keys: how programs sign their requests; stored only as a digest."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKeyQuerySet(models.QuerySet):
    def issue(self, name, user=None):
        """A new key named name, acting as user if given: (the row, the key itself), which is shown
        once and stored only hashed."""
        secret = f"parley_{secrets.token_urlsafe(32)}"
        return self.create(name=name, user=user, prefix=secret[:12], digest=ApiKey.digest_of(secret)), secret

    def authenticate(self, secret):
        """The live key that secret is, or None; its last use is noted (at most once a minute: no write per request)."""
        key = self.select_related("user").filter(digest=ApiKey.digest_of(secret), revoked_at__isnull=True).first()
        if key is not None:
            now = timezone.now()
            if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
                self.filter(pk=key.pk).update(last_used_at=now)
                key.last_used_at = now
        return key

    def count_usage(self, key, usage):
        """Add a stateless reply's tokens to the key that asked for it (one UPDATE, no race)."""
        self.filter(pk=key.pk).update(
            prompt_tokens=models.F("prompt_tokens") + (usage.prompt_tokens or 0),
            completion_tokens=models.F("completion_tokens") + (usage.completion_tokens or 0),
        )


class ApiKey(models.Model):
    """A program's key: sent as `Authorization: Bearer <key>`, kept only as its SHA-256 (keys are
    32 random bytes: a slow password hash would add nothing but a cost per request)."""

    name = models.CharField(max_length=100, help_text="Whose program this is: shown as the author of what it posts.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys",
        help_text="The account this key acts as (its members-only rooms); none: public rooms only.",
    )
    prefix = models.CharField(max_length=12, editable=False, help_text="The key's first characters, to tell keys apart.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    prompt_tokens = models.PositiveBigIntegerField(default=0, editable=False, help_text="Tokens of stateless replies (/v1, /chat) asked with this key.")
    completion_tokens = models.PositiveBigIntegerField(default=0, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def digest_of(secret):
        return hashlib.sha256(secret.encode()).hexdigest()

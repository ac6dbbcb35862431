"""API keys may act as an account: its members-only rooms become theirs to read."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("chat", "0008_mute_address"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="user",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="api_keys",
                to=settings.AUTH_USER_MODEL,
                help_text="The account this key acts as (its members-only rooms); none: public rooms only.",
            ),
        ),
    ]

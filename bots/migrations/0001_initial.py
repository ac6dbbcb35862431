import django.core.validators
import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Bot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(help_text="How a message mentions it: @Key.", max_length=32, unique=True, validators=[django.core.validators.RegexValidator("^[A-Za-z][A-Za-z0-9_]{1,31}$", "A bot's key is 2 to 32 letters, digits or underscores, starting with a letter (it is how @Key mentions it).")])),
                ("name", models.CharField(max_length=80, verbose_name="display name")),
                ("description", models.CharField(blank=True, default="", max_length=300)),
                ("persona", models.TextField(help_text="The system prompt: who the bot is and how it speaks.")),
                ("provider", models.CharField(blank=True, default="", help_text="local, openai, or the dotted path of a Provider class; empty: LLM_PROVIDER's choice.", max_length=200)),
                ("model", models.CharField(blank=True, default="", help_text="The model the provider asks for; empty: OPENAI_MODEL (the embedded model when local).", max_length=200, verbose_name="model name")),
                ("base_url", models.URLField(blank=True, default="", help_text="An OpenAI-compatible server's URL; empty: OPENAI_BASE_URL.", max_length=300, verbose_name="base URL")),
                ("api_key_env", models.CharField(blank=True, default="", help_text="The NAME of the environment variable holding the key (never the key); empty: OPENAI_API_KEY.", max_length=100, validators=[django.core.validators.RegexValidator("^[A-Za-z_][A-Za-z0-9_]{0,99}$", "Give the name of an environment variable (letters, digits, underscores), never the key itself.")], verbose_name="API key variable")),
                ("temperature", models.FloatField(blank=True, help_text="Sampling temperature, 0 to 2; empty: the model's default.", null=True, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(2.0)])),
                ("max_tokens", models.PositiveIntegerField(blank=True, help_text="Empty: REPLY_MAX_TOKENS.", null=True, validators=[django.core.validators.MinValueValidator(1)], verbose_name="most tokens per reply")),
                ("context_tokens", models.PositiveIntegerField(blank=True, help_text="The model's context window in tokens; empty: the provider's setting.", null=True, validators=[django.core.validators.MinValueValidator(256)])),
                ("active", models.BooleanField(default=True, help_text="An inactive bot cannot be mentioned or chosen.")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["key"],
                "constraints": [models.UniqueConstraint(django.db.models.functions.text.Lower("key"), name="bots_bot_key_any_case", violation_error_message="A bot with this key already exists (keys are compared without regard to case).")],
            },
        ),
        migrations.CreateModel(
            name="Room",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(help_text="Its URL segment: /rooms/<key>/.", max_length=40, unique=True, validators=[django.core.validators.RegexValidator("^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", "A room's key is 1 to 40 letters, digits, hyphens or underscores, starting with a letter or digit.")])),
                ("title", models.CharField(max_length=80)),
                ("topic", models.CharField(blank=True, default="", max_length=300)),
                ("visibility", models.CharField(choices=[("public", "Public: anyone, guests included"), ("members", "Members: signed-in members only")], default="public", max_length=16)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("bot", models.ForeignKey(blank=True, help_text="Answers a message that mentions no bot; empty: bots answer only when mentioned.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="rooms", to="bots.bot")),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="rooms_created", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["key"],
                "constraints": [models.UniqueConstraint(django.db.models.functions.text.Lower("key"), name="bots_room_key_any_case", violation_error_message="A room with this key already exists (keys are compared without regard to case).")],
            },
        ),
        migrations.CreateModel(
            name="Membership",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("role", models.CharField(choices=[("member", "Member"), ("moderator", "Moderator")], default="member", max_length=16)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("room", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="memberships", to="bots.room")),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="memberships", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["room", "user"],
                "constraints": [models.UniqueConstraint(fields=("room", "user"), name="bots_membership_once", violation_error_message="This person is already a member of this room.")],
            },
        ),
        migrations.AddField(
            model_name="room",
            name="members",
            field=models.ManyToManyField(blank=True, related_name="rooms", through="bots.Membership", to=settings.AUTH_USER_MODEL),
        ),
    ]

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("bots", "0002_seed"),
    ]

    operations = [
        migrations.AlterField(
            model_name="room",
            name="bot",
            field=models.ForeignKey(blank=True, help_text="Answers a message that mentions no bot; empty: bots answer only when mentioned.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="rooms", to="bots.bot", verbose_name="bot"),
        ),
        migrations.AlterField(
            model_name="room",
            name="key",
            field=models.CharField(help_text="Its address: /rooms/KEY/. Letters, digits, hyphens and underscores.", max_length=40, unique=True, validators=[django.core.validators.RegexValidator("^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", "A room's key is 1 to 40 letters, digits, hyphens or underscores, starting with a letter or digit.")], verbose_name="key"),
        ),
        migrations.AlterField(
            model_name="room",
            name="title",
            field=models.CharField(max_length=80, verbose_name="title"),
        ),
        migrations.AlterField(
            model_name="room",
            name="topic",
            field=models.CharField(blank=True, default="", max_length=300, verbose_name="topic"),
        ),
        migrations.AlterField(
            model_name="room",
            name="visibility",
            field=models.CharField(choices=[("public", "Public: anyone, guests included"), ("members", "Members: signed-in members only")], default="public", max_length=16, verbose_name="visibility"),
        ),
    ]

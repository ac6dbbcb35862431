"""A guest's mute keeps the address they posted from: it holds for new sessions from there too."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chat", "0007_sender_tags")]

    operations = [
        migrations.AddField(
            model_name="mute",
            name="address",
            field=models.CharField(
                blank=True, db_index=True, default="", max_length=64,
                help_text="A muted guest's last address: new sessions from it are muted too while the mute lasts.",
            ),
        ),
    ]

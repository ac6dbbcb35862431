"""People in rooms: a message's room and its replying bot apart, authors' ids, votes, removal, mutes."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def replies_name_their_bot(apps, schema_editor):
    """Until now a reply's bot was its room's: say so in the new column."""
    Message = apps.get_model("chat", "Message")
    Message.objects.filter(role="assistant").update(bot=models.F("room"))


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0003_revision"),
    ]

    operations = [
        # The room indexes name the column being renamed: dropped here, built again on `room` below.
        migrations.RemoveIndex(model_name="message", name="message_room_recent"),
        migrations.RemoveIndex(model_name="message", name="message_room_status"),
        migrations.RemoveIndex(model_name="message", name="message_room_updated"),
        migrations.RenameField(model_name="message", old_name="bot", new_name="room"),
        migrations.AlterField(
            model_name="message",
            name="room",
            field=models.CharField(help_text="The key of the room it was said in.", max_length=64),
        ),
        migrations.AddField(
            model_name="message",
            name="bot",
            field=models.CharField(blank=True, default="", help_text="The key of the bot writing a reply.", max_length=64),
        ),
        migrations.RunPython(replies_name_their_bot, migrations.RunPython.noop, elidable=True),
        migrations.AddField(
            model_name="message",
            name="author_id",
            field=models.CharField(
                blank=True, default="", max_length=64,
                help_text="Who posted it (a session's or an account's id): for their own messages and mutes.",
            ),
        ),
        migrations.AddField(model_name="message", name="up_votes", field=models.PositiveIntegerField(default=0, editable=False)),
        migrations.AddField(model_name="message", name="down_votes", field=models.PositiveIntegerField(default=0, editable=False)),
        migrations.AddField(
            model_name="message",
            name="removed_at",
            field=models.DateTimeField(blank=True, null=True, help_text="When a moderator removed it from the room."),
        ),
        migrations.AddField(model_name="message", name="removed_by", field=models.CharField(blank=True, default="", max_length=150)),
        migrations.AddIndex(model_name="message", index=models.Index(fields=["room", "-id"], name="message_room_recent")),
        migrations.AddIndex(model_name="message", index=models.Index(fields=["room", "status", "id"], name="message_room_status")),
        migrations.AddIndex(model_name="message", index=models.Index(fields=["room", "updated_at"], name="message_room_updated")),
        migrations.CreateModel(
            name="Feedback",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("voter", models.CharField(help_text="The voter's session or account id.", max_length=64)),
                ("value", models.SmallIntegerField(choices=[(1, "up"), (-1, "down")])),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("message", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="feedback", to="chat.message")),
            ],
            options={
                "verbose_name_plural": "feedback",
                "constraints": [models.UniqueConstraint(fields=("message", "voter"), name="feedback_one_vote_per_person")],
            },
        ),
        migrations.CreateModel(
            name="Mute",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("author_id", models.CharField(db_index=True, max_length=64)),
                ("author", models.CharField(blank=True, default="", help_text="Their display name when muted.", max_length=80)),
                ("until", models.DateTimeField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ("created_by", models.CharField(blank=True, default="", max_length=150)),
            ],
        ),
    ]

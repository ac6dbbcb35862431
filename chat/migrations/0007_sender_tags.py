"""Who sent a message (and who is muted) is a sender tag, <kind>:<ref>, in a field named `sender`."""

from django.db import migrations, models
from django.db.models import F, Value
from django.db.models.functions import Concat, Substr

# (model, field) pairs holding a sender: guests were stored as a bare token, keys as api:<id>.
HOLDERS = [("Message", "sender"), ("Mute", "sender"), ("Feedback", "voter")]


def tag(apps, schema_editor):
    for model, field in HOLDERS:
        rows = apps.get_model("chat", model).objects
        rows.filter(**{f"{field}__startswith": "api:"}).update(**{field: Concat(Value("key:"), Substr(field, 5))})
        rows.exclude(**{field: ""}).exclude(**{f"{field}__contains": ":"}).update(**{field: Concat(Value("guest:"), F(field))})


def untag(apps, schema_editor):
    for model, field in HOLDERS:
        rows = apps.get_model("chat", model).objects
        rows.filter(**{f"{field}__startswith": "key:"}).update(**{field: Concat(Value("api:"), Substr(field, 5))})
        rows.filter(**{f"{field}__startswith": "guest:"}).update(**{field: Substr(field, 7)})


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0006_room_events"),
    ]

    operations = [
        migrations.RenameField(model_name="message", old_name="author_id", new_name="sender"),
        migrations.AlterField(
            model_name="message",
            name="sender",
            field=models.CharField(
                blank=True, default="", max_length=64,
                help_text="Who sent it, as a tag (guest:…, user:<id>, key:<id>): for their own messages and mutes.",
            ),
        ),
        migrations.RenameField(model_name="mute", old_name="author_id", new_name="sender"),
        migrations.AlterField(
            model_name="mute",
            name="sender",
            field=models.CharField(db_index=True, help_text="Who is muted, as a sender tag.", max_length=64),
        ),
        migrations.AlterField(
            model_name="feedback",
            name="voter",
            field=models.CharField(help_text="The voter, as a sender tag (guest:…, user:<id>).", max_length=64),
        ),
        migrations.RunPython(tag, untag),
    ]

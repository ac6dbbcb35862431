"""The three bots of the demo and today's four rooms, as rows: the same keys, URLs, groups and history."""

from django.db import migrations

# Empty provider, model, base URL and key variable: today's behaviour, the settings' defaults (the
# embedded model without OPENAI_API_KEY, the OPENAI_* settings with it).
BOTS = [
    {
        "key": "ChatBot",
        "name": "Default",
        "description": "A helpful assistant that asks when it needs more to go on.",
        "persona": (
            "You are a helpful assistant that is chatting with a user. You can ask the user to "
            "provide more information if it helps you determine the correct response."
        ),
    },
    {
        "key": "BelleBot",
        "name": "Southern Belle",
        "description": "Answers with the charm and mannerisms of a Southern Belle.",
        "persona": (
            "You are a Southern Belle. Speak with the charm and mannerisms of a Southern Belle in "
            "all your responses, using appropriate vocabulary and expressions."
        ),
    },
    {
        "key": "PirateBot",
        "name": "Pirate",
        "description": "Talks like a pirate, slang and all.",
        "persona": (
            "You are a pirate. Speak like a pirate in all your responses, using pirate slang and "
            "expressions."
        ),
    },
]
LOUNGE = {
    "key": "Lounge",
    "title": "The Lounge",
    "topic": "People talk with each other; a bot answers only when someone mentions it, like @PirateBot.",
}


def seed(apps, schema_editor):
    Bot = apps.get_model("bots", "Bot")
    Room = apps.get_model("bots", "Room")
    for fields in BOTS:
        bot, _ = Bot.objects.get_or_create(key=fields["key"], defaults=fields)
        # Each bot has a room of its own under its key, public as every room was.
        Room.objects.get_or_create(
            key=bot.key, defaults={"title": bot.name, "topic": bot.description, "bot": bot, "visibility": "public"}
        )
    Room.objects.get_or_create(key=LOUNGE["key"], defaults={**LOUNGE, "visibility": "public"})


def unseed(apps, schema_editor):
    apps.get_model("bots", "Room").objects.filter(key__in=[*(b["key"] for b in BOTS), LOUNGE["key"]]).delete()
    apps.get_model("bots", "Bot").objects.filter(key__in=[b["key"] for b in BOTS]).delete()


class Migration(migrations.Migration):

    dependencies = [("bots", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]

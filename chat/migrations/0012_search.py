"""Search: a tsvector column under a partial GIN index (PostgreSQL), or an FTS5 table (SQLite),
filled from the messages already there."""

from django.conf import settings
from django.db import migrations

# Spelled out here, not imported: a migration keeps meaning what it meant when written.
FTS = "chat_message_search"
INDEXED = "m.removed_at IS NULL AND m.status NOT IN ('pending', 'streaming')"
CLEAN = "replace(replace(m.content, char(57344), ''), char(57345), '')"  # without search's snippet marks


def create(apps, schema_editor):
    db = schema_editor.connection
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute("ALTER TABLE chat_message ADD COLUMN search_document tsvector")
            # Partial: a row outside the index (a streaming reply growing) has no entry to update.
            cursor.execute("CREATE INDEX message_search ON chat_message USING gin (search_document) "
                           "WHERE search_document IS NOT NULL")
            cursor.execute(
                f"UPDATE chat_message m SET search_document = to_tsvector(%s::regconfig, m.content) WHERE {INDEXED}",
                [settings.SEARCH_CONFIG],
            )
        else:
            # Words as the "simple" configuration splits them: letters and digits of any script, case
            # folded, accents kept.
            cursor.execute(f"CREATE VIRTUAL TABLE {FTS} USING fts5(content, tokenize = 'unicode61 remove_diacritics 0')")
            # A deleted message (pruning, the admin) leaves the index in the same statement. SQLite drops
            # a table's triggers when a later migration rebuilds it (most column changes do): such a
            # migration must create this one again (tests/test_search.py's drift test fails otherwise).
            cursor.execute(f"CREATE TRIGGER {FTS}_forget AFTER DELETE ON chat_message "
                           f"BEGIN DELETE FROM {FTS} WHERE rowid = old.id; END")
            cursor.execute(f"INSERT INTO {FTS} (rowid, content) SELECT m.id, {CLEAN} "
                           f"FROM chat_message m WHERE {INDEXED}")


def drop(apps, schema_editor):
    db = schema_editor.connection
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute("ALTER TABLE chat_message DROP COLUMN search_document")
        else:
            cursor.execute(f"DROP TRIGGER {FTS}_forget")
            cursor.execute(f"DROP TABLE {FTS}")


class Migration(migrations.Migration):
    dependencies = [("chat", "0011_unread")]
    operations = [migrations.RunPython(create, drop)]

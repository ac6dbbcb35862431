"""Search kept by the database: triggers bring a message's index entry in line within the write
that changes its row, where the app wrote each entry again after the row (two writes a post)."""

from django.conf import settings
from django.db import migrations

# Spelled out here, not imported: a migration keeps meaning what it meant when written.
FTS = "chat_message_search"
INDEXED = "{row}.removed_at IS NULL AND {row}.status NOT IN ('pending', 'streaming')"
CLEAN = "replace(replace(new.content, char(57344), ''), char(57345), '')"  # without search's snippet marks
WATCHED = "content, status, removed_at"  # what decides an entry; a growth write's content is not indexed


def create(apps, schema_editor):
    # A later migration that changes chat_message's columns must keep these: SQLite drops a table's
    # triggers when it rebuilds the table (most column changes do), so create them and 0012's again
    # (tests/test_search.py's churn and drift tests fail otherwise); PostgreSQL refuses to change the
    # type of a column a trigger names (content, status, removed_at): drop them first, create them after.
    db = schema_editor.connection
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            # The configuration in a function of its own, which searches read too: rebuild_search points
            # it at a new SEARCH_CONFIG. The name is checked by the cast and quoted by format().
            cursor.execute("SELECT format('CREATE OR REPLACE FUNCTION chat_search_config() RETURNS regconfig "
                           "LANGUAGE sql STABLE AS %%L', format('SELECT %%L::regconfig', %s::regconfig::text))",
                           [settings.SEARCH_CONFIG])
            cursor.execute(cursor.fetchone()[0])
            cursor.execute(
                "CREATE OR REPLACE FUNCTION chat_message_search_document() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN NEW.search_document := CASE WHEN {INDEXED.format(row='NEW')} "
                "THEN to_tsvector(chat_search_config(), NEW.content) END; RETURN NEW; END $$"
            )
            # BEFORE: the entry is part of the row's own write. A streaming reply's growth fires nothing.
            cursor.execute(f"CREATE TRIGGER chat_message_search_insert BEFORE INSERT ON chat_message FOR EACH ROW "
                           f"WHEN ({INDEXED.format(row='NEW')}) EXECUTE FUNCTION chat_message_search_document()")
            cursor.execute(f"CREATE TRIGGER chat_message_search_update BEFORE UPDATE OF {WATCHED} ON chat_message "
                           f"FOR EACH ROW WHEN ({INDEXED.format(row='NEW')} OR OLD.search_document IS NOT NULL) "
                           "EXECUTE FUNCTION chat_message_search_document()")
        else:
            enter = (f"INSERT INTO {FTS} (rowid, content) SELECT new.id, {CLEAN} "
                     f"WHERE {INDEXED.format(row='new')};")
            cursor.execute(f"CREATE TRIGGER {FTS}_enter AFTER INSERT ON chat_message "
                           f"WHEN {INDEXED.format(row='new')} BEGIN {enter} END")
            cursor.execute(f"CREATE TRIGGER {FTS}_change AFTER UPDATE OF {WATCHED} ON chat_message "
                           f"WHEN ({INDEXED.format(row='old')}) OR ({INDEXED.format(row='new')}) "
                           f"BEGIN DELETE FROM {FTS} WHERE rowid = old.id; {enter} END")


def drop(apps, schema_editor):
    db = schema_editor.connection
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute("DROP TRIGGER chat_message_search_insert ON chat_message")
            cursor.execute("DROP TRIGGER chat_message_search_update ON chat_message")
            cursor.execute("DROP FUNCTION chat_message_search_document()")
            cursor.execute("DROP FUNCTION chat_search_config()")
        else:
            cursor.execute(f"DROP TRIGGER {FTS}_enter")
            cursor.execute(f"DROP TRIGGER {FTS}_change")


class Migration(migrations.Migration):
    dependencies = [("chat", "0012_search")]
    operations = [migrations.RunPython(create, drop)]

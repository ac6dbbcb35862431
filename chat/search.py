"""Search: messages found by their words, in the database that holds them, kept by the database's
own triggers in the write that changes the row (so it follows the rows, whoever writes them).

A message is in the index exactly while a page shows it finished: not removed, not pending or
streaming (a growth write fires no trigger). PostgreSQL keeps a tsvector column of the row
(the configuration chat_search_config() names: SEARCH_CONFIG as rebuild_search last stored it,
default "simple") under a partial GIN index and reads websearch_to_tsquery;
SQLite keeps an FTS5 table, its query built from the same syntax: words, "quoted phrases", or,
-word. The triggers are chat/migrations/0012_search.py's and 0013_search_triggers.py's.
"""

import re
from dataclasses import dataclass
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import connections
from django.utils.dateparse import parse_datetime
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

LONGEST = 200  #: characters a query may have
MOST = 50  #: results a search may ask for
TABLE = "chat_message"
FTS = "chat_message_search"
# Where a snippet's matches start and stop, as the database marks them: private-use characters,
# taken out of the text first, so only the database's marks become <mark>.
START, STOP = "\ue000", "\ue001"
_WORD = re.compile(r"[^\W_]+")
_TOKEN = re.compile(r'-?"[^"]*"?|\S+')
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# PostgreSQL: the statement that makes chat_search_config() name a configuration (given as a
# parameter: checked to exist by the cast, quoted by format(), as a function's body takes no parameters).
CONFIG_FUNCTION = ("SELECT format('CREATE OR REPLACE FUNCTION chat_search_config() RETURNS regconfig LANGUAGE sql "
                   "STABLE AS %%L', format('SELECT %%L::regconfig', %s::regconfig::text))")


class BadQuery(ValueError):
    """A query that cannot be run, with the sentence that says how to fix it."""


@dataclass(frozen=True)
class Term:
    words: tuple  # one word, or a phrase's words in order
    negated: bool = False


def parse(query):
    """The query as alternatives (split by "or"), each a list of Terms all of which must hold.

    Raises BadQuery for a query that is empty, too long, not text, or only says what to leave out.
    A query of punctuation alone parses to [] and finds nothing, without asking the database.
    """
    query = (query or "").strip()
    if not query:
        raise BadQuery(_("Type something to search for."))
    if len(query) > LONGEST:
        raise BadQuery(_("A search is at most %(most)d characters; this one has %(count)d.") % {"most": LONGEST, "count": len(query)})
    if _CONTROL.search(query) or START in query or STOP in query:
        raise BadQuery(_("The search has characters that are not text in it; type words to look for."))
    alternatives, terms = [], []
    for token in _TOKEN.findall(query):
        if token.lower() == "or":
            alternatives.append(terms)
            terms = []
            continue
        negated = token.startswith("-")
        words = tuple(word.lower() for word in _WORD.findall(token))
        if words:
            terms.append(Term(words, negated))
    alternatives = [terms for terms in [*alternatives, terms] if terms]
    if any(all(term.negated for term in terms) for terms in alternatives):
        raise BadQuery(_("Each part of a search needs a word to find, not only words to leave out (-word)."))
    return alternatives


@dataclass(frozen=True)
class Result:
    id: int
    room: str
    author: str
    bot: str
    created: object
    snippet: str  # HTML: the text escaped, the matches in <mark>


def find(query, rooms, limit=20, using="default"):
    """The messages of rooms (keys; None: every room) matching query, best first, then newest: a
    list of Result. Raises BadQuery (see parse)."""
    alternatives = parse(query)
    if not alternatives or rooms == []:
        return []
    db = connections[using]
    rows = _backend(db).find(db, query, alternatives, rooms, limit)
    return [Result(pk, room, author if role == "user" else "", bot if role == "assistant" else "", created,
                   _marked(snippet)) for pk, room, author, bot, role, created, snippet in rows]


def find_readable(query, readable, room="", limit=20):
    """find for a reader: in room (a key, "" for all) among readable (the rooms access.py lets them
    read). A room they may not read is, here too, a room that does not exist: BadQuery, the same sentence."""
    keys = [entry.key for entry in readable]
    if room:
        if room not in keys:
            raise BadQuery(_("There is no room called %(room)r.") % {"room": str(room)[:40]})
        keys = [room]
    return find(query, keys, limit)


def limit_of(text, default=20):
    """The number of results asked for, from the query string ("" for the default); BadQuery when not 1 to MOST."""
    if text in (None, ""):
        return default
    if not (str(text).isascii() and str(text).isdigit() and 1 <= int(text) <= MOST):
        raise BadQuery(_("limit is a whole number from 1 to %(most)d.") % {"most": MOST})
    return int(text)


def rebuild(db, pks):
    """Write the index entries of messages pks afresh from their rows, with the database's configuration
    (rebuild_search; the app's own writes leave the index to the triggers)."""
    if pks:
        _backend(db).rebuild(db, list(pks))


def configure(db):
    """Point the triggers and searches at SEARCH_CONFIG as it is now (PostgreSQL; SQLite has one way to split words)."""
    _backend(db).configure(db)


def drift(db):
    """Ids of messages whose index entry disagrees with their row (missing, extra or stale): [] when in step."""
    return sorted(_backend(db).drift(db))


def _marked(snippet):
    """The database's snippet as HTML: everything escaped, its marks as <mark>."""
    text = escape(snippet or "")
    return mark_safe(text.replace(START, "<mark>").replace(STOP, "</mark>"))


def _indexed(alias="m"):
    """SQL: the row is in the index (what a page shows, finished)."""
    return f"{alias}.removed_at IS NULL AND {alias}.status NOT IN ('pending', 'streaming')"


def _backend(db):
    return _Postgres if db.vendor == "postgresql" else _SQLite


class _Postgres:
    """A tsvector column of chat_message (search_document), NULL when not indexed; a partial GIN index."""

    @staticmethod
    def configure(db):
        with db.cursor() as cursor:
            cursor.execute(CONFIG_FUNCTION, [settings.SEARCH_CONFIG])
            cursor.execute(cursor.fetchone()[0])

    @staticmethod
    def rebuild(db, pks):
        with db.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} m SET search_document = CASE WHEN {_indexed()} "
                f"THEN to_tsvector(chat_search_config(), m.content) END WHERE m.id = ANY(%s)",
                [pks],
            )

    @staticmethod
    def find(db, query, alternatives, rooms, limit):
        where, params = "", []
        if rooms is not None:
            # Written so that no index of rooms serves it: ANDed into the bitmap, the room index was
            # read whole (100 ms on a million rows) to narrow the few rows the words had found.
            where, params = "AND COALESCE(m.room, '') = ANY(%s)", [list(rooms)]
        # The query spelled out where it is used, not joined in: the planner then sees the words
        # (estimates from the column's statistics). Ranked and cut first; snippets only for the rows kept.
        matched = "websearch_to_tsquery(chat_search_config(), %s)"
        options = f"StartSel={START}, StopSel={STOP}, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=\" … \""
        with db.cursor() as cursor:
            cursor.execute(
                f"""SELECT m.id, m.room, m.author, m.bot, m.role, m.created_at,
                           ts_headline(chat_search_config(), translate(m.content, %s, ''), {matched}, %s)
                    FROM (SELECT m.id, ts_rank(m.search_document, {matched}) AS rank FROM {TABLE} m
                          WHERE m.search_document @@ {matched} {where}
                          ORDER BY rank DESC, m.id DESC LIMIT %s) AS best
                    JOIN {TABLE} m ON m.id = best.id
                    WHERE {_indexed()}
                    ORDER BY best.rank DESC, m.id DESC""",
                [START + STOP, query, options, query, query, *params, limit],
            )
            return cursor.fetchall()

    @staticmethod
    def drift(db):
        with db.cursor() as cursor:
            cursor.execute(
                f"SELECT m.id FROM {TABLE} m WHERE m.search_document IS DISTINCT FROM "
                f"CASE WHEN {_indexed()} THEN to_tsvector(chat_search_config(), m.content) END"
            )
            return [pk for (pk,) in cursor.fetchall()]


class _SQLite:
    """An FTS5 table (chat_message_search) whose rowid is the message's id and whose text is the message's."""

    @staticmethod
    def configure(db):
        pass

    @staticmethod
    def rebuild(db, pks):
        marks = ", ".join(["%s"] * len(pks))
        with db.cursor() as cursor:
            cursor.execute(f"DELETE FROM {FTS} WHERE rowid IN ({marks})", pks)
            cursor.execute(
                f"INSERT INTO {FTS} (rowid, content) SELECT m.id, {_clean('m.content')} FROM {TABLE} m "
                f"WHERE m.id IN ({marks}) AND {_indexed()}",
                pks,
            )

    @staticmethod
    def find(db, query, alternatives, rooms, limit):
        where, params = "", [START, STOP, _fts_query(alternatives)]
        if rooms is not None:
            rooms = list(rooms)
            where, params = f"AND m.room IN ({', '.join(['%s'] * len(rooms))})", [*params, *rooms]
        with db.cursor() as cursor:
            cursor.execute(
                f"""SELECT m.id, m.room, m.author, m.bot, m.role, m.created_at,
                           snippet({FTS}, 0, %s, %s, ' … ', 24)
                    FROM {FTS} JOIN {TABLE} m ON m.id = {FTS}.rowid
                    WHERE {FTS} MATCH %s AND {_indexed()} {where}
                    ORDER BY bm25({FTS}), m.id DESC LIMIT %s""",
                [*params, limit],
            )
            rows = cursor.fetchall()
        return [(*row[:5], _when(row[5]), row[6]) for row in rows]

    @staticmethod
    def drift(db):
        indexed = f"SELECT m.id, {_clean('m.content')} FROM {TABLE} m WHERE {_indexed()}"
        entries = f"SELECT rowid, content FROM {FTS}"
        with db.cursor() as cursor:
            cursor.execute(f"SELECT id FROM ({indexed} EXCEPT {entries}) UNION SELECT rowid FROM ({entries} EXCEPT {indexed})")
            return [pk for (pk,) in cursor.fetchall()]


def _clean(column):
    """SQLite: column's text without the snippet marks' characters."""
    return f"replace(replace({column}, char({ord(START)}), ''), char({ord(STOP)}), '')"


def _fts_query(alternatives):
    """The parsed query in FTS5's syntax: every word quoted (no word is an operator), phrases as
    phrases; -word as NOT after the words to find (FTS5's NOT takes a left side)."""
    def term(term):
        return '"' + " ".join(term.words) + '"'

    groups = []
    for terms in alternatives:
        found = " AND ".join(term(t) for t in terms if not t.negated)
        left_out = "".join(f" NOT {term(t)}" for t in terms if t.negated)
        groups.append(f"({found}{left_out})")
    return " OR ".join(groups)


def _when(value):
    """A time raw SQL read from SQLite (text, in UTC) as the aware datetime the ORM gives."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value.replace(tzinfo=dt_timezone.utc) if value is not None and value.tzinfo is None else value

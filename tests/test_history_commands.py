"""Operator commands on the history: export in flat memory, prune in batches, sweep stale replies."""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from chat.models import Message
from tests.servers import ROOT, database_url

pytestmark = pytest.mark.django_db


# Runs a command and prints its peak resident memory in KiB. A child's peak also counts the memory
# of the process that forked it, up to its exec: a small process of its own keeps pytest's out.
PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def export_in_a_process(target):
    """Run manage.py export_history in a process of its own; return its peak resident memory in bytes."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, sys.executable, "manage.py", "export_history", "--output", str(target)],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url()}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout) * 1024  # Linux counts KiB


def exported_ids(target):
    """The ids in a JSON Lines export, in file order."""
    with target.open() as lines:
        return [json.loads(line)["id"] for line in lines]


def add_messages(count):
    """Save count short user messages in batches."""
    Message.objects.bulk_create(
        (Message(room="PirateBot" if i % 2 else "ChatBot", role="user", content=f"message {i} " + "x" * 100) for i in range(count)),
        batch_size=5000,
    )


@pytest.mark.django_db(transaction=True)  # committed: the export runs in another process
def test_export_history_streams_every_row_in_flat_memory(tmp_path):
    add_messages(10_000)
    small = export_in_a_process(tmp_path / "small.jsonl")
    add_messages(90_000)
    big = export_in_a_process(tmp_path / "big.jsonl")

    ids = list(Message.objects.order_by("id").values_list("id", flat=True))
    assert exported_ids(tmp_path / "small.jsonl") == ids[:10_000]
    assert exported_ids(tmp_path / "big.jsonl") == ids  # every row once, first to last, in order
    # Ten times the rows in the same memory: they are streamed. Holding 100,000 rows at once
    # costs about 80 MiB more.
    print(f"export_history peak RSS: 10,000 rows {small / 2**20:.1f} MiB, 100,000 rows {big / 2**20:.1f} MiB")
    assert big < small + 20 * 2**20


def test_export_filters_by_room_and_date_and_writes_csv(tmp_path, history):
    old = Message.objects.create(room="PirateBot", role="user", content="ancient")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    out = io.StringIO()
    call_command("export_history", format="csv", room="PirateBot", since=(timezone.now() - timedelta(days=1)).strftime("%Y-%m-%d"),
                 stdout=out, stderr=io.StringIO())
    lines = out.getvalue().strip().splitlines()
    assert lines[0].startswith("id,room,bot,role") and len(lines) == 3
    assert "ancient" not in out.getvalue() and "Sweet tea" not in out.getvalue()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    formulas = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)",
                "\tTAB", "\rCR"]
    for text in formulas:
        Message.objects.create(room="Lounge", role="user", content=text, author=text[:40])
    Message.objects.create(room="Lounge", role="user", content="plain = fine", author="Ann")
    out = io.StringIO()
    call_command("export_history", format="csv", room="Lounge", stdout=out, stderr=io.StringIO())
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [row["content"] for row in rows] == ["'" + text for text in formulas] + ["plain = fine"]
    assert [row["author"] for row in rows] == ["'" + text[:40] for text in formulas] + ["Ann"]
    # JSON Lines is no spreadsheet: it keeps the text exactly.
    out = io.StringIO()
    call_command("export_history", format="jsonl", room="Lounge", stdout=out, stderr=io.StringIO())
    assert [json.loads(line)["content"] for line in out.getvalue().splitlines()] == formulas + ["plain = fine"]


def test_prune_deletes_old_messages_in_batches_and_spares_the_rest(history):
    old = [Message.objects.create(room="ChatBot", role="user", content=f"old {i}") for i in range(25)]
    streaming = Message.objects.create(room="ChatBot", bot="ChatBot", role="assistant", status="streaming")
    Message.objects.filter(pk__in=[m.pk for m in old] + [streaming.pk]).update(created_at=timezone.now() - timedelta(days=100))
    out = io.StringIO()
    call_command("prune_history", older_than="90d", batch_size=10, stdout=out)
    assert "deleted 25 messages" in out.getvalue()
    assert Message.objects.count() == len(history) + 1


def test_sweep_command_marks_stale_replies_interrupted():
    stale = Message.objects.create(room="ChatBot", bot="ChatBot", role="assistant", status="streaming", content="half")
    Message.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    out = io.StringIO()
    call_command("sweep_replies", stdout=out)
    stale.refresh_from_db()
    assert (stale.status, stale.content) == ("interrupted", "half") and "marked 1" in out.getvalue()

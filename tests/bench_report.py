"""The streaming benchmark's tables and targets."""

import os
import platform

from tests.bench_stream import FAST_RATE, ROOM_RATE_NOTE


WRITES = "row writes per reply, every table"
# What a reply may write, every table counted: each of its changes (its insert, its claim, at most
# duration / flush interval + 1 growths, its finish: the "+ 4") writes its row and takes its room's
# next event number from the room's counter (a second row); the question it answers writes its
# row, its number and the guest's new session (the "+ 3").
WRITES_TARGET = f"{WRITES} (question and reply rows, the room's counter, the session) <= 2 x (duration / flush interval + 4) + 3"


def figure(run, key):
    """A run's figure: a key of the run, or (key, table) for one table's share of the row writes."""
    return run[key] if isinstance(key, str) else run[key[0]].get(key[1], 0)


def writes_rows(*runs):
    """The row writes' lines of a table: the total, then each table that any of the runs wrote."""
    tables = sorted({table for run in runs for table in run["row_writes_per_reply_by_table"]})
    return [(WRITES, "row_writes_per_reply", "{:.1f}")] + [
        (f"  of which {table}", ("row_writes_per_reply_by_table", table), "{:.1f}") for table in tables
    ]


def compare(name, before, fanout):
    """Parley as checked out at --before beside Parley now, measured in the same run (part 1: the
    mean of each side's two turns)."""
    rows = [("added latency p50 (ms)", "latency_p50_ms", "{:.0f}"), ("added latency p99 (ms)", "latency_p99_ms", "{:.0f}"),
            ("first token to every page, p99 (ms)", "first_token_p99_ms", "{:.0f}"),
            ("the server's first page (ms)", "first_page_ms", "{:.0f}"),
            ("frames per subscriber per reply", "frames_per_subscriber", "{:.0f}"),
            ("bytes per subscriber per reply", "bytes_per_subscriber", "{:,.0f}"),
            *writes_rows(*before["turns"]["before"], *before["turns"]["now"]),
            ("server CPU (s)", "server_cpu_seconds", "{:.1f}"), ("server peak memory (MiB)", "server_peak_mib", "{:.0f}")]
    lines = [f"| | {name} (before) | now | now / before |", "|---|---:|---:|---:|"]
    for label, key, form in rows:
        old, new = (sum(figure(run, key) for run in before["turns"][side]) / 2 for side in ("before", "now"))
        lines.append(f"| {label} | {form.format(old)} | {form.format(new)} | {f'{new / old:.2f}x' if old else '-'} |")
    if "fanout" in before:
        old, new = before["fanout"]["max_sustained"], fanout["max_sustained"]
        lines.append(f"| fan-out frames/s with p99 < 100 ms | {old:,} | {new:,} | {new / max(1, old):.2f}x |")
    return "\n".join(lines)


def report(args, runs, flush):
    """The tables and the targets; returns (text, every target met)."""
    from tests.bench_scaling import cost_growth

    parley, demo, fast = runs["parley"], runs["demo"], runs["parley_fast"]
    fanout, per_socket, tuned, two = runs["fanout"], runs["per_socket"], runs["per_socket_tuned"], runs["two_processes"]
    rows = [
        ("added latency p50 (ms)", "latency_p50_ms", "{:.0f}"),
        ("added latency p99 (ms)", "latency_p99_ms", "{:.0f}"),
        ("first token to every page, p99 (ms)", "first_token_p99_ms", "{:.0f}"),
        ("frames per subscriber per reply", "frames_per_subscriber", "{:.0f}"),
        ("bytes per subscriber per reply", "bytes_per_subscriber", "{:,.0f}"),
        ("final rendered message (bytes)", "rendered_bytes", "{:,.0f}"),
        *writes_rows(parley, demo, fast),
        ("row writes per second of reply, every table", "row_writes_per_second", "{:.1f}"),
        ("reply duration (s)", "reply_seconds", "{:.2f}"),
        ("server CPU (s)", "server_cpu_seconds", "{:.1f}"),
        ("server peak memory (MiB)", "server_peak_mib", "{:.0f}"),
    ]
    lines = [
        f"R={args.rooms} rooms x S={args.subscribers} subscribers ({args.rooms * args.subscribers} sockets), "
        f"T={args.tokens} tokens at U={args.rate}/s, flush interval {flush * 1000:.0f} ms; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "",
        f"| | Parley | demo's design | demo / Parley | Parley at U={FAST_RATE:.0f}/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key, form in rows:
        new, old, quick = (figure(run, key) for run in (parley, demo, fast))
        ratio = old / new if new else float("nan")
        lines.append(f"| {label} | {form.format(new)} | {form.format(old)} | {ratio:.1f}x | {form.format(quick)} |")
    lines.append(f"| subscribers whose final text equals the row | {parley['texts_equal_rows']}/{parley['subscribers']} "
                 f"| {demo['texts_equal_rows']}/{demo['subscribers']} | | {fast['texts_equal_rows']}/{fast['subscribers']} |")
    lines += [
        "",
        "| fan-out, 500 sockets | most frames/s with p99 < 100 ms |",
        "|---|---:|",
        f"| Parley: one subscription per room per process | {fanout['max_sustained']:,} |",
        f"| Parley, two processes behind Redis, sockets dealt among them | {two['max_sustained']:,} |",
        f"| one channel per socket (Channels' usual consumer) | {per_socket['max_sustained']:,} |",
        f"| one channel per socket, without the per-message database hop | {tuned['max_sustained']:,} |",
    ]
    if runs["sweep"]:
        lines += ["", f"| sockets in one process ({ROOM_RATE_NOTE}) | frames/s delivered | p99 (ms) | server CPU per frame (us) "
                      "| memory per idle socket (KiB) |",
                  "|---:|---:|---:|---:|---:|"]
        lines += [f"| {s['sockets']:,} | {s['delivered_per_s']:,.0f} | {s['p99_ms']:.1f} | {s['server_cpu_per_frame_us']:.0f} "
                  f"| {s.get('kib_per_idle_socket', 0):.1f} |" for s in runs["sweep"]]
    before = runs.get("before")
    capacity_kept = (f"no lower than before's ({before['fanout']['max_sustained']:,})", fanout["max_sustained"]
                     >= before["fanout"]["max_sustained"]) if before and "fanout" in before else None
    checks = [
        ("added latency p50 <= 80 ms", parley["latency_p50_ms"] <= 80),
        ("added latency p99 <= 150 ms", parley["latency_p99_ms"] <= 150),
        ("first token to every page p99 <= 100 ms", parley["first_token_p99_ms"] <= 100),
        ("bytes per subscriber <= 6 x final rendered message", parley["bytes_per_subscriber"] <= 6 * parley["rendered_bytes"]),
        (WRITES_TARGET, parley["row_writes_per_reply"] <= 2 * (parley["reply_seconds"] / flush + 4) + 3),
        (f"row writes per second at U={FAST_RATE:.0f} no more than at U={args.rate:.0f} (within 25 %)",
         fast["row_writes_per_second"] <= 1.25 * parley["row_writes_per_second"]),
        ("fan-out >= 2 x one channel per socket without the database hop", fanout["max_sustained"] >= 2 * tuned["max_sustained"]),
        ("server CPU per delivered frame no more than 25 % over the 250-socket figure, up to 10,000 sockets",
         bool(runs["sweep"]) and cost_growth(runs["sweep"]) <= 1.25),
        ("at the sweep's most sockets, p99 <= 100 ms", bool(runs["sweep"]) and runs["sweep"][-1]["p99_ms"] <= 100),
        ("at the sweep's most sockets, memory per idle socket <= 25 KiB",
         bool(runs["sweep"]) and runs["sweep"][-1].get("kib_per_idle_socket", float("inf")) <= 25),
        ("every subscriber's final text equals its row", all(
            run["texts_equal_rows"] == run["subscribers"] for run in (parley, demo, fast))),
    ]
    if capacity_kept:
        checks.append(("fan-out capacity " + capacity_kept[0], capacity_kept[1]))
    lines.append("")
    lines += [f"- [{'x' if ok else ' '}] {label}" for label, ok in checks]
    if not capacity_kept:
        lines.append("- [-] fan-out capacity against an older checkout: not measured (run with --before DIR)")
    return "\n".join(lines), all(ok for _, ok in checks)

"""The benchmark's plots, as SVG: added-latency histograms of Parley and the demo's design, and how delivery scales."""

from html import escape

WIDTH, HEIGHT = 420, 280  # one panel
LEFT, BOTTOM, TOP = 48, 40, 58
BINS = 40


def _panel(x0, title, latencies_ms, limit_ms, colour, marks):
    """One histogram: share of tokens per latency bin, with p50/p99 and any reference lines."""
    plot_w, plot_h = WIDTH - LEFT - 30, HEIGHT - BOTTOM - TOP
    counts = [0] * BINS
    for value in latencies_ms:
        counts[min(BINS - 1, int(value / limit_ms * BINS))] += 1
    total = max(1, len(latencies_ms))
    top = max(counts) / total or 1
    parts = [f'<g transform="translate({x0},0)">',
             f'<text x="{LEFT}" y="20" font-weight="bold">{escape(title)}</text>']
    bar_w = plot_w / BINS
    for i, count in enumerate(counts):
        h = plot_h * (count / total) / top
        parts.append(f'<rect x="{LEFT + i * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                     f'height="{h:.1f}" fill="{colour}"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#444"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>')
    for k in range(5):
        value = limit_ms * k / 4
        x = LEFT + plot_w * k / 4
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{value:,.0f}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">added latency (ms)</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top * 100:.0f}%</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>')
    for row, (label, value, dash) in enumerate(marks):
        x = LEFT + plot_w * min(1.0, value / limit_ms)
        y = TOP - 20 + 12 * row  # labels above the bars, one row each
        anchor = "end" if x > LEFT + 0.7 * plot_w else "start"
        parts.append(f'<line x1="{x:.1f}" y1="{y + 2}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="#c00" '
                     f'stroke-dasharray="{dash}"/>')
        parts.append(f'<text x="{x + (-3 if anchor == "end" else 3):.1f}" y="{y}" fill="#c00" '
                     f'text-anchor="{anchor}">{escape(label)} ms</text>')
    parts.append("</g>")
    return "\n".join(parts)


def nice(value):
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above value: round tick labels."""
    scale = 1.0
    while scale * 10 < value:
        scale *= 10
    return next(step * scale for step in (1, 2, 2.5, 5, 10) if step * scale >= value)


def latency_svg(parley, demo, flush_seconds):
    """Two panels with their own scales: the demo's latencies run far past Parley's."""
    panels = []
    for i, (title, run, colour) in enumerate([("Parley", parley, "#2b6cb0"), ("the demo's design", demo, "#b7791f")]):
        values = [v * 1000 for v in run["latencies"]]
        limit = nice(max(values) if values else 1.0)
        marks = [(f"p50 {run['latency_p50_ms']:,.0f}", run["latency_p50_ms"], "2,2"),
                 (f"p99 {run['latency_p99_ms']:,.0f}", run["latency_p99_ms"], "6,3")]
        panels.append(_panel(i * WIDTH, f"{title} (share of token deliveries, {len(values):,} sampled)",
                             values, limit, colour, marks))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * WIDTH}" height="{HEIGHT}" '
            f'font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="#fff"/>\n'
            + "\n".join(panels) + "\n</svg>\n")


def _line_panel(x0, title, points, unit, colour):
    """A line over the sweep's socket counts (x, evenly spaced) with each value labelled."""
    plot_w, plot_h = WIDTH - LEFT - 30, HEIGHT - BOTTOM - TOP
    limit = nice(max(value for _, value in points) or 1.0)
    step = plot_w / max(1, len(points) - 1)
    xy = [(LEFT + i * step, TOP + plot_h - plot_h * value / limit) for i, (_, value) in enumerate(points)]
    parts = [f'<g transform="translate({x0},0)">', f'<text x="{LEFT}" y="20" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#444"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>',
             f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{limit:,.0f}</text>',
             f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
             f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in xy)}"/>']
    for (label, value), (x, y) in zip(points, xy):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle">{value:,.1f} {unit}</text>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{label:,}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">sockets in one process</text>')
    parts.append("</g>")
    return "\n".join(parts)


def _bar_panel(x0, title, bars, colour):
    """Horizontal bars, one per design, each labelled with its value."""
    plot_w = WIDTH - 30 - 150
    top = max(value for _, value in bars) or 1
    parts = [f'<g transform="translate({x0},0)">', f'<text x="10" y="20" font-weight="bold">{escape(title)}</text>']
    for row, (label, value) in enumerate(bars):
        y = TOP + row * 44
        width = plot_w * value / top
        parts.append(f'<text x="10" y="{y - 4}">{escape(label)}</text>')
        parts.append(f'<rect x="10" y="{y}" width="{width:.1f}" height="18" fill="{colour}"/>')
        parts.append(f'<text x="{14 + width:.1f}" y="{y + 13}">{value:,.0f}</text>')
    parts.append("</g>")
    return "\n".join(parts)


def scaling_svg(runs):
    """How delivery's cost grows: p99 and CPU per frame over the sweep, and capacity by design."""
    sweep = runs["sweep"]
    panels = [
        _line_panel(0, "p99 latency of a frame (ms)", [(s["sockets"], s["p99_ms"]) for s in sweep], "ms", "#2b6cb0"),
        _line_panel(WIDTH, "server CPU per delivered frame (us)",
                    [(s["sockets"], s["server_cpu_per_frame_us"]) for s in sweep], "us", "#2f855a"),
        _bar_panel(2 * WIDTH, "most frames/s with p99 < 100 ms, 500 sockets", [
            ("Parley, one process", runs["fanout"]["max_sustained"]),
            ("Parley, two processes + Redis", runs["two_processes"]["max_sustained"]),
            ("channel per socket, no DB hop", runs["per_socket_tuned"]["max_sustained"]),
            ("channel per socket (usual)", runs["per_socket"]["max_sustained"]),
        ], "#b7791f"),
    ]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * WIDTH}" height="{HEIGHT}" '
            f'font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="#fff"/>\n'
            + "\n".join(panels) + "\n</svg>\n")

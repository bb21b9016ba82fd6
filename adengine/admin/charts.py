"""Small server-side SVG charts for the admin reports (no JavaScript, no CDN)."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def line_chart(
    labels: list[str], series: dict[str, list[float | None]], *, title: str, width: int = 640, height: int = 220
) -> SafeString:
    """A line chart of one or more series over the same labels; gaps where a value is None."""
    colours = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"]
    pad_l, pad_r, pad_t, pad_b = 56, 12, 28, 36
    values = [v for s in series.values() for v in s if v is not None]
    top = max(values) if values else 1.0
    top = top * 1.1 if top > 0 else 1.0
    n = max(len(labels), 1)
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(i: int) -> float:
        return pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return pad_t + plot_h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" style="background:#fff;border:1px solid #e5e7eb">',
        f'<text x="{pad_l}" y="18" font-size="13" font-family="sans-serif">{escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - pad_r}" y2="{pad_t + plot_h}" stroke="#9ca3af"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + plot_h}" stroke="#9ca3af"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 4}" font-size="10" text-anchor="end" font-family="sans-serif">'
        f"{top:.3g}</text>",
        f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" font-size="10" text-anchor="end" '
        'font-family="sans-serif">0</text>',
    ]
    parts += _x_labels(labels, x, width=width, y=height - 12)
    for k, points in enumerate(series.values()):
        colour = colours[k % len(colours)]
        segment: list[str] = []
        for i, v in enumerate(points):
            if v is None:
                if len(segment) > 1:
                    parts.append(
                        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(segment)}"/>'
                    )
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(v):.1f}")
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>')
        if len(segment) > 1:
            parts.append(_polyline(colour, segment))
    right = width - pad_r  # the legend, right-aligned so that every name ends inside the chart
    for k, name in reversed(list(enumerate(series))):
        parts.append(
            f'<text x="{right:.1f}" y="18" font-size="{LEGEND_SIZE}" text-anchor="end" '
            f'fill="{colours[k % len(colours)]}" font-family="sans-serif">{escape(name)}</text>'
        )
        right -= text_width(name, LEGEND_SIZE) + 12
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text in it is escaped above


LABEL_SIZE = 10
LEGEND_SIZE = 11
EDGE = 2  # the least room between a label and the chart's edge


def text_width(text: str, size: float) -> float:
    """A generous estimate of a text's width in sans-serif at ``size`` px: 0.62 em a Latin character, 1 em a wide
    (CJK) one; enough to keep it inside the chart, no font metrics needed."""
    return sum(size * (1.0 if ord(ch) > 0x2E80 else 0.62) for ch in text)


def _x_labels(labels: list[str], x, *, width: int, y: float) -> list[str]:
    """Labels under the x-axis: as many as fit without overlapping, always the first and the last, each moved
    inwards as far as needed to stay whole inside the chart (the last one used to be cut in half)."""
    n = len(labels)
    if not n:
        return []
    widest = max(text_width(label, LABEL_SIZE) for label in labels)
    room = (x(n - 1) - x(0)) / max(n - 1, 1)  # between neighbouring points
    step = max(1, -(-int(widest + 8) // max(int(room), 1)))
    chosen = list(range(0, n, step))
    if chosen[-1] != n - 1:  # the last label always shows, in place of the one before if they would overlap
        if len(chosen) > 1 and x(n - 1) - x(chosen[-1]) < widest + 8:
            chosen.pop()
        chosen.append(n - 1)
    out = []
    for i in chosen:
        half = text_width(labels[i], LABEL_SIZE) / 2
        cx = min(max(x(i), half + EDGE), width - half - EDGE)
        out.append(
            f'<text x="{cx:.1f}" y="{y}" font-size="{LABEL_SIZE}" text-anchor="middle" '
            f'font-family="sans-serif">{escape(labels[i])}</text>'
        )
    return out


def _polyline(colour: str, points: list[str]) -> str:
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>'


def sparkline(values: list[float], *, title: str, width: int = 112, height: int = 28) -> SafeString:
    """A word-sized line of a series (no axes), its last point marked; ``title`` names it for screen readers and
    as a tooltip."""
    pad = 3
    n = len(values)
    top = max(values, default=0) or 1.0

    def x(i: int) -> float:
        return pad + ((width - 2 * pad) * i / (n - 1) if n > 1 else (width - 2 * pad) / 2)

    def y(v: float) -> float:
        return pad + (height - 2 * pad) * (1 - v / top)

    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#e5e7eb"/>',
    ]
    if n > 1:
        parts.append(f'<polyline fill="none" stroke="#2563eb" stroke-width="1.5" points="{points}"/>')
    if n:
        parts.append(f'<circle cx="{x(n - 1):.1f}" cy="{y(values[-1]):.1f}" r="2" fill="#2563eb"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # the only text in it (title) is escaped above

"""Server-side inline SVG charts: render with no network, no script and no vendored library."""
from __future__ import annotations

from typing import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

W, H = 640, 180
PAD_L, PAD_B, PAD_T = 44, 22, 10
COLOUR = "#417690"  # the admin's own header blue
MUTED = "#bbb"


def _axis(ymax: float) -> str:
    ticks = []
    for frac in (0, 0.5, 1):
        y = PAD_T + (H - PAD_T - PAD_B) * (1 - frac)
        label = f"{ymax * frac:.3g}"
        ticks.append(f'<line x1="{PAD_L}" x2="{W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#666">{label}</text>')
    return "".join(ticks)


def bar_chart(rows: Sequence[tuple[str, float | None]], *, title: str, label_every: int = 1,
              fmt: str = "{:.3g}") -> SafeString:
    """Vertical bars; a ``None`` value draws a grey stub (suppressed for k-anonymity)."""
    if not rows:
        return mark_safe(f'<p class="lr-empty">{escape(title)}: no data yet.</p>')
    ymax = max((v for _, v in rows if v is not None), default=0) or 1
    inner_w, inner_h = W - PAD_L, H - PAD_T - PAD_B
    step = inner_w / len(rows)
    parts = [f'<svg class="lr-chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">'
             f"<title>{escape(title)}</title>", _axis(ymax)]
    for i, (label, value) in enumerate(rows):
        x = PAD_L + i * step + step * 0.1
        bw = max(1.0, step * 0.8)
        if value is None:
            parts.append(f'<rect x="{x:.1f}" y="{PAD_T + inner_h - 3}" width="{bw:.1f}" height="3" fill="{MUTED}">'
                         f"<title>{escape(label)}: suppressed</title></rect>")
        else:
            bh = inner_h * value / ymax
            parts.append(f'<rect x="{x:.1f}" y="{PAD_T + inner_h - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                         f'fill="{COLOUR}"><title>{escape(label)}: {escape(fmt.format(value))}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{H - 6}" text-anchor="middle" font-size="10" '
                         f'fill="#666">{escape(label[:14])}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def hbar_chart(rows: Sequence[tuple[str, float]], *, title: str, fmt: str = "{:.0%}") -> SafeString:
    """Horizontal bars with labels: for shares (topics, interests)."""
    if not rows:
        return mark_safe(f'<p class="lr-empty">{escape(title)}: no data yet.</p>')
    row_h, label_w = 22, 170
    height = row_h * len(rows) + 8
    vmax = max(v for _, v in rows) or 1
    parts = [f'<svg class="lr-chart" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(title)}">'
             f"<title>{escape(title)}</title>"]
    for i, (label, value) in enumerate(rows):
        y = 4 + i * row_h
        bw = (W - label_w - 60) * max(0.0, value) / vmax
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12" fill="#333">'
                     f"{escape(label[:28])}</text>"
                     f'<rect x="{label_w}" y="{y + 3}" width="{bw:.1f}" height="{row_h - 8}" fill="{COLOUR}"/>'
                     f'<text x="{label_w + bw + 6:.1f}" y="{y + 15}" font-size="11" fill="#666">'
                     f"{escape(fmt.format(value))}</text>")
    parts.append("</svg>")
    return mark_safe("".join(parts))


def interval_chart(rows: Sequence[tuple[str, float | None, float, float]], *, title: str) -> SafeString:
    """A point with its confidence interval per row (click-through per arm)."""
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return mark_safe(f'<p class="lr-empty">{escape(title)}: no impressions yet.</p>')
    row_h, label_w = 26, 120
    height = row_h * len(rows) + 24
    xmax = max(r[3] for r in rows) or 1
    scale = (W - label_w - 70) / xmax
    parts = [f'<svg class="lr-chart" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(title)}">'
             f"<title>{escape(title)}</title>"]
    for i, (label, p, low, high) in enumerate(rows):
        y = 12 + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 4}" text-anchor="end" font-size="12">{escape(label)}</text>'
                     f'<line x1="{label_w + low * scale:.1f}" x2="{label_w + high * scale:.1f}" y1="{y}" y2="{y}" '
                     f'stroke="{COLOUR}" stroke-width="3"/>'
                     f'<circle cx="{label_w + p * scale:.1f}" cy="{y}" r="5" fill="#ba2121"/>'
                     f'<text x="{label_w + high * scale + 6:.1f}" y="{y + 4}" font-size="11" fill="#666">'
                     f"{p:.2%} [{low:.2%}, {high:.2%}]</text>")
    parts.append("</svg>")
    return mark_safe("".join(parts))

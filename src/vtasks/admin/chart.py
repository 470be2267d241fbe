"""A bar chart as numbers for an inline SVG (drawn by the dashboard template): no script, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, GAP = 480, 120, 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One minute: a green ``ok`` part stacked on a red ``failed`` part, in SVG user units."""

    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float
    title: str


def bars(minutes: Sequence[tuple[str, int, int]]) -> list[Bar]:
    """Bars for ``(label, successful, failed)`` per minute, oldest first, scaled to the tallest."""
    if not minutes:
        return []
    top = max(1, max(ok + failed for _, ok, failed in minutes))
    slot = WIDTH / len(minutes)
    out = []
    for index, (label, ok, failed) in enumerate(minutes):
        failed_height = HEIGHT * failed / top
        ok_height = HEIGHT * ok / top
        out.append(
            Bar(
                x=round(index * slot + GAP / 2, 1),
                width=round(max(1.0, slot - GAP), 1),
                failed_y=round(HEIGHT - failed_height, 1),
                failed_height=round(failed_height, 1),
                ok_y=round(HEIGHT - failed_height - ok_height, 1),
                ok_height=round(ok_height, 1),
                title=f"{label}: {ok} successful, {failed} failed",
            )  # fmt: skip
        )
    return out

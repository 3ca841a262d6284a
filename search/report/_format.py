"""How numbers are written in the report: one place, so the verdict and the tables always agree."""
from __future__ import annotations

import math
from collections.abc import Sequence

from search.report._stats import Interval

__all__ = ["score", "points", "ci_points", "ci_score", "score_interval", "points_interval", "markdown_table",
           "text_table"]


def score(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def points(value: float) -> str:
    """A micro-F1 difference in points (1 point = 0.01), signed, one decimal."""
    text = f"{100 * value:+.1f}"
    return "+0.0" if text == "-0.0" else text


def _unsigned(value: float) -> str:
    text = f"{100 * value:.1f}"
    return "0.0" if text == "-0.0" else text


def ci_points(interval: Interval) -> str:
    return f"[{_unsigned(interval.low)}, {_unsigned(interval.high)}]" if interval.defined else "n/a"


def ci_score(interval: Interval) -> str:
    return f"[{interval.low:.3f}, {interval.high:.3f}]" if interval.defined else "n/a"


def score_interval(interval: Interval | None) -> str:
    if interval is None or not math.isfinite(interval.estimate):
        return "-"
    if not interval.defined:
        return f"{interval.estimate:.3f} ({interval.n} seed{'s' if interval.n != 1 else ''}, no CI)"
    return f"{interval.estimate:.3f} {ci_score(interval)}"


def points_interval(interval: Interval | None) -> str:
    if interval is None:
        return "-"
    return f"{points(interval.estimate)} {ci_points(interval)}"


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    return "\n".join(lines)

"""Small formatting helpers shared by the report, the model card and the task sections they include.

Example:
    >>> cell("a|b"), number(0.5), g(298.42100001), fmt(12.3456)
    ('a\\\\|b', '0.5000', '298.421', '12.3')
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["cell", "number", "g", "fmt", "section", "headline_metric"]


def cell(value: Any) -> str:
    """Text safe inside a markdown table cell."""
    if value is None:
        return "–"
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def number(value: Any) -> str:
    """A metric or count for a card table: ints as they are, floats with 4 decimals."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return cell(value)


def g(value: Any) -> str:
    """A number as written by hand: 600, 0.5, 298.421 (float noise of the data summary rounded away)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return cell(value)
    return f"{float(value):.6g}"


def fmt(value: Any) -> str:
    """A value of the report's tables: 4 decimals below 10, one above."""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def section(mapping: Any, key: str) -> dict:
    """``mapping[key]`` when it is a dict, else an empty one (run files may lack any key)."""
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    return value if isinstance(value, dict) else {}


def headline_metric(keys, metrics: Any) -> str | None:
    """The first of a task's report metrics (``report_metric_keys``) after the loss that ``metrics`` holds as a number."""
    metrics = metrics if isinstance(metrics, Mapping) else {}
    return next((k for k in keys if k != "loss" and isinstance(metrics.get(k), (int, float)) and not isinstance(metrics.get(k), bool)), None)

"""Showing an audit event's detail (free-form JSON) as readable pairs."""

import json
from typing import Any

from django import template

register = template.Library()


def _pairs(detail: Any, prefix: str = "") -> list[tuple[str, str]]:
    if not isinstance(detail, dict):
        return [(prefix or "detail", _text(detail))] if detail not in (None, "", [], {}) else []
    pairs: list[tuple[str, str]] = []
    for key, value in detail.items():
        name = f"{prefix}{key}".replace("_", " ")
        if isinstance(value, dict):
            pairs.extend(_pairs(value, f"{prefix}{key} "))
        elif value not in (None, "", [], {}):
            pairs.append((name, _text(value)))
    return pairs


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return json.dumps(value, ensure_ascii=False)


@register.filter
def detail_pairs(detail: Any) -> list[tuple[str, str]]:
    """Nested keys are joined ("filters kind"); empty values are left out."""
    return _pairs(detail)

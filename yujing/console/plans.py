"""Response plans (一点一方案) as the console shows them: looked up, marked, split into steps. Pure.

A plan is the registry's ``plan`` text of a station (stations.yaml), one line so
that e-mail, CAP ``instruction`` and rule messages quote it as written. The
example registry writes it as labelled steps separated by "；" —
``【示例方案，非正式】转移：…；安置：…；封路：…；排涝：…`` — and the console lays
those steps out as a list the duty officer can read at a glance. A plan written
as free text is shown as one step; nothing is lost either way.

An illustrative plan (the example registry's) starts with a 【…示例…】 mark; the
console says so beside it, in Chinese first, so nobody takes it for an official one.
"""

from __future__ import annotations

import re
from typing import Any

MARK = "【示例方案，非正式】"
_MARK = re.compile(r"^\s*【[^】]*示例[^】]*】\s*")
_STEPS = re.compile(r"[；;]\s*")
_LABEL = re.compile(r"^([^：:，,。]{1,6})[：:]\s*(.+)$", re.S)


def plan_view(text: str) -> dict[str, Any] | None:
    """``{"text", "illustrative", "steps": [{"label", "text"}]}`` of a plan, or None if empty."""
    text = (text or "").strip()
    if not text:
        return None
    mark = _MARK.match(text)
    body = text[mark.end():] if mark else text
    steps = []
    for part in _STEPS.split(body):
        part = part.strip().rstrip("。")
        if not part:
            continue
        m = _LABEL.match(part)
        steps.append({"label": m.group(1), "text": m.group(2)} if m else {"label": "", "text": part})
    return {"text": text, "illustrative": mark is not None, "steps": steps}


def plan_for(registry: Any, station_id: str) -> dict[str, Any] | None:
    """The plan of ``station_id`` in ``registry`` (a stations.Registry or None), or None when
    the station is unknown or has none registered (the page then says 未登记处置方案)."""
    station = registry.get(station_id) if registry is not None else None
    return plan_view(getattr(station, "plan", "")) if station is not None else None

"""Rule message templates: plain placeholder substitution, checked at load time.

``str.format`` would let a template reach attributes (``{x.__class__}``); here a
template may only name the placeholders below, optionally with a number format
(``{value:.1f}``), and nothing else is ever evaluated.
"""

from __future__ import annotations

import string

PLACEHOLDERS = {
    "station", "station_name", "town", "rule", "rule_name", "grade", "grade_zh", "grade_roman",
    "value", "window", "time", "plan", "reason", "incident", "kind", "kind_zh",
}
KIND_ZH = {"pending": "待定", "raised": "发布", "upgraded": "升级", "downgraded": "降级",
           "cleared": "解除"}
_formatter = string.Formatter()


def check_template(text: str) -> None:
    """Raise ValueError naming the bad placeholder and the allowed ones."""
    try:
        parts = list(_formatter.parse(text))
    except ValueError as exc:
        raise ValueError(f"bad template: {exc}; write {{placeholder}}, and {{{{ }}}} for a "
                         "literal brace") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{name}}}: use one of "
                             f"{', '.join(sorted(PLACEHOLDERS))}")
        if conversion:
            raise ValueError(f"placeholder {{{name}!{conversion}}}: conversions are not allowed")
        if spec and ("{" in spec or name != "value"):
            raise ValueError(f"placeholder {{{name}:{spec}}}: only {{value}} takes a format, "
                             "e.g. {value:.1f}")


def render(text: str, values: dict[str, object]) -> str:
    """Fill a checked template; missing values become empty strings."""
    out = []
    for literal, name, spec, _ in _formatter.parse(text):
        out.append(literal)
        if name is None:
            continue
        value = values.get(name, "")
        if spec and isinstance(value, (int, float)):
            try:
                out.append(format(value, spec))
                continue
            except ValueError:
                pass
        out.append(f"{value:g}" if isinstance(value, float) else str(value))
    return "".join(out)

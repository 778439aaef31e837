"""YAML with source locations, and pydantic errors turned into located messages.

Analysts and operators edit YAML by hand; an error that says only "validation
failed" costs them an afternoon. Every error here names the file, the line, the
dotted key and what to write instead.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml

Loc = tuple[Any, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Problem:
    """One located error in a YAML file."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class SourceError(Exception):
    """One or more problems in a source file; ``str()`` lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Located:
    """Parsed YAML data with the line of every key and list item."""

    data: Any
    lines: dict[Loc, int]
    file: str

    def line_of(self, loc: Loc) -> int:
        """Line of the deepest known prefix of ``loc`` (1-based; 0 if unknown)."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 0)


def _build(node: yaml.Node, loc: Loc, lines: dict[Loc, int], env: dict[str, str],
           file: str, problems: list[Problem]) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, loc, file, problems)
            try:
                hash(key)
            except TypeError:
                problems.append(Problem(file, key_node.start_mark.line + 1, _dotted(loc),
                                        "a key must be a plain word or number, not a list or mapping"))
                continue
            if key in out:
                problems.append(Problem(file, key_node.start_mark.line + 1, _dotted(loc + (key,)),
                                        "duplicate key: keep one of them"))
            lines[loc + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, loc + (key,), lines, env, file, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, loc + (i,), lines, env, file, problems)
                for i, item in enumerate(node.value)]
    value = _scalar(node, loc, file, problems)
    if isinstance(value, str) and "${" in value:
        value = _substitute(value, env, file, node.start_mark.line + 1, loc, problems)
    return value


def _scalar(node: yaml.Node, loc: Loc, file: str, problems: list[Problem]) -> Any:
    """Construct one node; a tag or value YAML cannot build becomes a located problem.

    Without this, '!custom x', '!!int x', '<<' merge keys or a date like 2025-02-30
    escaped as a bare ConstructorError or ValueError with no file or key.
    """
    try:
        return yaml.constructor.SafeConstructor().construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        detail = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(file, node.start_mark.line + 1, _dotted(loc),
                                f"cannot read this value ({detail}): remove the tag, or quote "
                                "the value to keep it as text"))
        return None


def _substitute(text: str, env: dict[str, str], file: str, line: int, loc: Loc,
                problems: list[Problem]) -> str:
    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(Problem(file, line, _dotted(loc),
                                f"environment variable {name} is not set: export it, or write "
                                f"${{{name}:-default}} to give a default"))
        return ""

    return _ENV.sub(repl, text)


def parse_yaml(text: str, file: str = "<string>", env: dict[str, str] | None = None) -> Located:
    """Parse YAML text, substituting ``${VAR}`` / ``${VAR:-default}`` in strings."""
    env = dict(os.environ) if env is None else env
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as exc:
        # a character YAML does not allow (a control character): not a MarkedYAMLError
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise SourceError([Problem(file, line, "", f"control character U+{exc.character:04X} "
                                   "in the file: YAML allows text, tabs and line breaks only; "
                                   "remove it (an editor's 'show invisibles' finds it)")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise SourceError([Problem(file, line, "", f"YAML syntax error: {exc.problem}; "
                                   "check indentation and quoting on this line")]) from None
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    data = None if node is None else _build(node, (), lines, env, file, problems)
    if problems:
        raise SourceError(problems)
    return Located(data, lines, file)


def load_yaml(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Located:
    """Read and parse a YAML file; a missing file is a located problem too."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SourceError([Problem(str(p), line, "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x}): "
                                   "save the file as UTF-8")]) from None
    except FileNotFoundError:
        raise SourceError([Problem(str(p), 0, "", "file not found: check the path "
                                   "(relative paths are from the current directory)")]) from None
    except OSError as exc:
        raise SourceError([Problem(str(p), 0, "", f"cannot read file: {exc.strerror}")]) from None
    return parse_yaml(text, str(p), env)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _known_fields(model: type[pydantic.BaseModel], loc: Loc) -> list[str]:
    """Keys the model accepts at pydantic's raw error ``loc`` (for 'did you mean' hints).

    Walks field annotations; a tagged union member is chosen by the tag pydantic
    puts in the location.
    """
    current: Any = model
    parts = list(loc)
    i = 0
    while i < len(parts):
        part = parts[i]
        i += 1
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        members = _members(fields[part].annotation)
        if len(members) == 1:
            current = members[0][1]
            continue
        tag = parts[i] if i < len(parts) else None
        chosen = next((m for t, m in members if t is not None and t == tag), None)
        if chosen is not None:
            i += 1
            current = chosen
        else:
            current = next((m for _, m in members), None)
    fields = getattr(current, "model_fields", None)
    return [f.alias or name for name, f in fields.items()] if fields else []


def _members(ann: Any) -> list[tuple[str | None, Any]]:
    """(tag, model) for every pydantic model inside an annotation (unions, Annotated, lists)."""
    tag = None
    for meta in getattr(ann, "__metadata__", ()) or ():
        if isinstance(meta, pydantic.Tag):
            tag = meta.tag
    base = getattr(ann, "__origin__", None) if getattr(ann, "__metadata__", None) else None
    if base is not None:
        return [(tag or t, m) for t, m in _members(base)]
    if isinstance(ann, type) and issubclass(ann, pydantic.BaseModel):
        return [(tag, ann)]
    out: list[tuple[str | None, Any]] = []
    for arg in getattr(ann, "__args__", ()) or ():
        out.extend(_members(arg))
    return out


def validate(model: type[pydantic.BaseModel], src: Located) -> Any:
    """Validate ``src.data`` against ``model``; raise SourceError with located problems."""
    try:
        return model.model_validate(src.data if src.data is not None else {})
    except pydantic.ValidationError as exc:
        raise SourceError(problems_from(exc, src, model)) from None


def problems_from(exc: pydantic.ValidationError, src: Located,
                  model: type[pydantic.BaseModel] | None = None, base: Loc = ()) -> list[Problem]:
    problems = []
    seen: set[tuple[int, str, str]] = set()
    for err in exc.errors():
        loc = base + _data_path(src.data, base, err["loc"], err["type"] == "extra_forbidden")
        key = _dotted(loc)
        line = src.line_of(loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            known = _known_fields(model, tuple(err["loc"])[:-1]) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else (
                f"known keys here: {', '.join(known)}" if known else "remove it")
            msg = f"unknown key: {hint}"
        elif kind == "missing":
            msg = "required key is missing: add it"
        else:
            got = err.get("input")
            shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
            msg = f"{err['msg']} (got {shown[:80]})"
        if (line, key, msg) not in seen:
            seen.add((line, key, msg))
            problems.append(Problem(src.file, line, key, msg))
    return problems


def _data_path(data: Any, base: Loc, loc: Loc, last_is_key: bool) -> Loc:
    """pydantic's error location without union/tag labels: keep only parts that exist in
    the data (the last part of an unknown-key error names the bad key itself)."""
    cur = data
    for part in base:
        cur = cur[part] if isinstance(cur, (dict, list)) else None
    out: list[Any] = []
    parts = list(loc)
    for i, part in enumerate(parts):
        is_last = i == len(parts) - 1
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif is_last and (last_is_key or not isinstance(cur, (dict, list))):
            out.append(part)
        elif isinstance(cur, dict) and is_last:
            out.append(part)  # a missing required key: name it
    return tuple(out)

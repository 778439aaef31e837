"""Property tests of the file decoders: config (``config.py`` through ``yamlsrc``), rules
(``rules/loader.py``, ``rules/schema.py``), the duty roster (``alerts/roster.py``,
``roster_file.py``) and the ingest tokens file (``connectors/auth.py``).

Whatever the file holds, loading gives a value or ``SourceError``: every problem names the
file and says what is wrong (with the line where one is known) — never another exception,
which would reach an operator as a traceback. Input: random text, YAML with odd syntax
(tabs, anchors, tags, unclosed brackets, ``${VAR`` without its brace), and the repository's
own files with one to three values replaced, deleted or renamed, so the checks behind a
parse are reached and not only the parser.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yujing.alerts.roster import load_roster
from yujing.config import load_config
from yujing.connectors.auth import hash_token, load_tokens
from yujing.rules.loader import load_rules_located
from yujing.yamlsrc import SourceError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 100
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DIR = Path(tempfile.mkdtemp(prefix="yj-file-fuzz-"))   # one folder: hypothesis reruns in one test

TOKENS = {"tokens": [
    {"gateway": "humen", "sha256": hash_token("t" * 32), "stations": ["DG-HM-*"]},
    {"gateway": "ent9", "sha256": hash_token("u" * 32), "enterprises": ["ENT-9"]},
    {"gateway": "city", "sha256": hash_token("v" * 32), "all_stations": True}]}


def _real(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


BASES = {"config": _real(ROOT / "config.yaml"), "roster": _real(ROOT / "roster.yaml"),
         "rules": _real(ROOT / "rules" / "rain_intensity.yaml"), "tokens": TOKENS}

scalars = (st.none() | st.booleans() | st.integers(-(2**64), 2**64)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
           | st.sampled_from(["", "0s", "-1m", "99999999d", "1e400", "${NOPE}", "${A:-}",
                              "Asia/Nowhere", "25:61", "2025-13-40", "mon 02:00-01:00", "*",
                              "DG-HM-R01\n", "sha256:zz", "~", "null", "[", "&a", "*a", ".inf"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
odd_yaml = st.lists(st.sampled_from([
    "a: [1, 2", "\tkey: 1", "x: &a [1]\ny: *a", "x: *missing", "!!python/object:os.system x",
    "k: !!binary ???", "? [a]\n: b", "- - -", "k: '${UNCLOSED'", "%YAML 9.9\n---", "k: |\n bad",
    "\ufeffk: 1", "k: \"\\x\"", "--- \n--- \n", "k: {a: 1, a: 2}", "@", "k: 0x", "kafka: 3",
    "tokens:\n  - {}", "rules:\n  - id: x", "people: 7", "\x00", "k: v\n  w: 1"]),
    max_size=4).map("\n".join)


@st.composite
def mutated(draw, name: str) -> str:
    """A real file of this kind with a few nodes replaced, deleted or renamed."""
    doc = yaml.safe_load(yaml.safe_dump(BASES[name]))   # a fresh copy
    for _ in range(draw(st.integers(1, 3))):
        path = []
        node = doc
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)):
            key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict)
                                       else range(len(node))))
            path.append(key)
            node = node[key]
        if not path:
            doc = draw(values)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        what = draw(st.sampled_from(["set", "delete", "rename"]))
        last = path[-1]
        if what == "set":
            parent[last] = draw(values)
        elif what == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = parent.pop(last)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def texts(name: str) -> st.SearchStrategy[str]:
    return st.one_of(mutated(name), mutated(name), odd_yaml, st.text(max_size=200))


def _located(exc: SourceError, file: Path) -> None:
    assert exc.problems, "a SourceError names at least one problem"
    for p in exc.problems:
        assert isinstance(p.line, int) and p.line >= 0, p
        assert isinstance(p.message, str) and p.message.strip(), p
        assert str(file) in p.file or p.file.endswith(".yaml") or p.file.endswith(".csv"), p
    assert str(exc).strip()


def _write(name: str, text: str) -> Path:
    path = DIR / f"{name}.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


@FUZZ
@given(text=texts("config"))
def test_any_config_loads_or_is_a_located_error(text):
    path = _write("config", text)
    try:
        load_config(path)
    except SourceError as exc:
        _located(exc, path)


@FUZZ
@given(text=texts("rules"))
def test_any_rule_file_loads_or_is_a_located_error(text):
    folder = DIR / "rules"
    folder.mkdir(exist_ok=True)
    path = folder / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_rules_located(folder)
    except SourceError as exc:
        _located(exc, path)


@FUZZ
@given(text=texts("roster"))
def test_any_roster_loads_or_is_a_located_error(text):
    path = _write("roster", text)
    try:
        load_roster(path)
    except SourceError as exc:
        _located(exc, path)


@FUZZ
@given(text=texts("tokens"))
def test_any_tokens_file_loads_or_is_a_located_error(text):
    path = _write("tokens", text)
    try:
        tokens = load_tokens(path)
    except SourceError as exc:
        _located(exc, path)
    else:
        # what loaded identifies nobody without a listed token
        assert tokens.identify("Bearer not-a-listed-token") is None

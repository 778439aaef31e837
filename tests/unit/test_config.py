"""config.yaml loading (yujing.config) and located YAML errors (yujing.yamlsrc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from yujing.config import Config, load_config
from yujing.rules.schema import RuleFile
from yujing.yamlsrc import Problem, SourceError, load_yaml, parse_yaml, validate

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def problems(exc_info) -> list[Problem]:
    return exc_info.value.problems


# --- defaults ------------------------------------------------------------------------------


def test_no_path_gives_the_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg.kafka.bootstrap is None  # embedded Tansu
    assert cfg.mqtt.url is None  # embedded amqtt
    assert cfg.kafka.partitions == 4
    assert cfg.kafka.topics.readings == "yujing.readings"
    assert cfg.http.port == 8080
    assert cfg.gateway.linger_ms == 20 and cfg.gateway.max_envelope == 500
    assert cfg.worker.lateness == "1h"
    assert cfg.worker.rules_dir == tmp_path / "rules"
    assert cfg.notify.default == ["yujing://"]


def test_empty_file_gives_the_defaults_with_paths_next_to_the_file(tmp_path):
    cfg = load_config(write(tmp_path, "# nothing set\n"))
    assert cfg.model_dump(exclude={"worker"}) == Config().model_dump(exclude={"worker"})
    assert cfg.worker.rules_dir == tmp_path.resolve() / "rules"
    assert cfg.worker.data_dir == tmp_path.resolve() / ".yujing/worker"
    assert cfg.worker.registry is None


def test_the_shipped_config_yaml_loads():
    cfg = load_config(REPO / "config.yaml")
    assert cfg.worker.registry == REPO / "stations.yaml"
    assert cfg.worker.rules_dir == REPO / "rules"


def test_values_and_relative_and_absolute_paths(tmp_path):
    text = ("kafka:\n  bootstrap: k1:9092,k2:9092\n  partitions: 8\n"
            "worker:\n  rules_dir: my/rules\n  registry: /abs/stations.yaml\n  lateness: 30m\n"
            "notify:\n  grades:\n    red: ['json://x']\n")
    cfg = load_config(write(tmp_path, text))
    assert cfg.kafka.bootstrap == "k1:9092,k2:9092" and cfg.kafka.partitions == 8
    assert cfg.worker.rules_dir == tmp_path.resolve() / "my/rules"
    assert cfg.worker.registry == Path("/abs/stations.yaml")
    assert cfg.notify.urls_for("red") == ["json://x"]
    assert cfg.notify.urls_for("blue") == ["yujing://"]


# --- located errors ------------------------------------------------------------------------


def test_misspelt_key_names_file_line_key_and_did_you_mean(tmp_path):
    path = write(tmp_path, "kafka:\n  partitions: 2\n  bootstrp: localhost:9092\n")
    with pytest.raises(SourceError) as exc:
        load_config(path)
    [p] = problems(exc)
    assert (p.file, p.line, p.key) == (str(path), 3, "kafka.bootstrp")
    assert p.message == "unknown key: did you mean 'bootstrap'?"
    assert str(exc.value) == f"{path}:3: kafka.bootstrp: unknown key: did you mean 'bootstrap'?"


def test_misspelt_section_and_nested_key():
    src = parse_yaml("kafak:\n  partitions: 2\nkafka:\n  topics:\n    readngs: x\n", "c.yaml", {})
    with pytest.raises(SourceError) as exc:
        validate(Config, src)
    got = {(p.line, p.key, p.message) for p in problems(exc)}
    assert got == {(1, "kafak", "unknown key: did you mean 'kafka'?"),
                   (5, "kafka.topics.readngs", "unknown key: did you mean 'readings'?")}


def test_unknown_key_without_a_close_match_lists_the_known_keys():
    src = parse_yaml("http:\n  zzz: 1\n", "c.yaml", {})
    with pytest.raises(SourceError) as exc:
        validate(Config, src)
    [p] = problems(exc)
    assert p.message == ("unknown key: known keys here: host, port, max_body_bytes, tokens_file, "
                         "store_timeout_s, retry_after_s, max_items, max_listed, rate_limit")


def test_misspelt_key_inside_a_list_item_of_rules():
    text = ("rules:\n  - id: r1\n    name: n\n    hazard: h\n    metric: rain_mm\n"
            "    grades:\n      orange: {agg: sum, window: 3h, vlaue: 50}\n"
            "    clear: {agg: sum, window: 3h, op: '<', value: 10}\n")
    with pytest.raises(SourceError) as exc:
        validate(RuleFile, parse_yaml(text, "rain.yaml", {}))
    msgs = {(p.line, p.key, p.message) for p in problems(exc)}
    assert (7, "rules[0].grades.orange.vlaue", "unknown key: did you mean 'value'?") in msgs
    assert (7, "rules[0].grades.orange.value", "required key is missing: add it") in msgs


@pytest.mark.parametrize("text, line, key, fragment", [
    ("http:\n  port: abc\n", 2, "http.port", "valid integer"),
    ("kafka:\n  partitions: 0\n", 2, "kafka.partitions", "greater than or equal to 1"),
    ("kafka:\n  partitions: [1]\n", 2, "kafka.partitions", "(got list)"),
    ("mqtt:\n  url: tcp://h:1883\n", 2, "mqtt.url", "mqtt://host:port"),
    ("log_level: loud\n", 1, "log_level", "'debug', 'info', 'warning' or 'error'"),
    ("notify:\n  grades:\n    redd: []\n", 2, "notify.grades", "unknown grade 'redd'"),
    ("worker:\n  lateness: 1hour\n", 2, "worker.lateness", "bad duration '1hour'"),
])
def test_wrong_type_or_value_is_located(tmp_path, text, line, key, fragment):
    path = write(tmp_path, text)
    with pytest.raises(SourceError) as exc:
        load_config(path)
    [p] = problems(exc)
    assert (p.file, p.line, p.key) == (str(path), line, key)
    assert fragment in p.message


def test_a_config_that_is_not_a_mapping(tmp_path):
    path = write(tmp_path, "- kafka\n- mqtt\n")
    with pytest.raises(SourceError) as exc:
        load_config(path)
    [p] = problems(exc)
    assert p.line == 1 and "must be a mapping of sections" in p.message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SourceError) as exc:
        load_config(path)
    [p] = problems(exc)
    assert (p.file, p.line) == (str(path), 0)
    assert "file not found" in p.message
    assert str(exc.value).startswith(f"{path}: file not found")


def test_yaml_syntax_error_is_located():
    with pytest.raises(SourceError) as exc:
        parse_yaml("kafka:\n  partitions: 2\n bad: [\n", "c.yaml", {})
    [p] = problems(exc)
    assert p.file == "c.yaml" and p.line >= 2
    assert p.message.startswith("YAML syntax error")


def test_duplicate_key():
    with pytest.raises(SourceError) as exc:
        parse_yaml("http:\n  port: 1\n  host: h\n  port: 2\n", "c.yaml", {})
    [p] = problems(exc)
    assert (p.line, p.key, p.message) == (4, "http.port", "duplicate key: keep one of them")


def test_every_problem_is_reported_at_once():
    with pytest.raises(SourceError) as exc:
        parse_yaml("a: 1\na: 2\nb: ${NOPE}\n", "c.yaml", {})
    assert [p.line for p in problems(exc)] == [2, 3]


@pytest.mark.parametrize("text, line, key", [
    ("a: !custom x\n", 1, "a"),
    ("x: 1\na: !!int nope\n", 2, "a"),
    ("a:\n  b: [1, !!float y]\n", 2, "a.b[1]"),
    ("a: 2025-02-30\n", 1, "a"),  # a YAML timestamp that is not a date
    ("a: {<<: {b: 1}, c: 2}\n", 1, "a"),
])
def test_values_yaml_cannot_build_are_located_problems(text, line, key):
    with pytest.raises(SourceError) as exc:
        parse_yaml(text, "c.yaml", {})
    [p] = problems(exc)
    assert (p.file, p.line, p.key) == ("c.yaml", line, key)
    assert "cannot read this value" in p.message


def test_a_list_as_a_key_is_a_located_problem():
    with pytest.raises(SourceError) as exc:
        parse_yaml("ok: 1\n? [1, 2]\n: x\n", "c.yaml", {})
    [p] = problems(exc)
    assert p.line == 2 and "a key must be a plain word" in p.message


# --- ${ENV} substitution -------------------------------------------------------------------


def test_env_substitution():
    src = parse_yaml("kafka:\n  bootstrap: ${KB}\nmqtt:\n  url: mqtt://${HOST}:${PORT}\n",
                     "c.yaml", {"KB": "k:9092", "HOST": "broker", "PORT": "1883"})
    assert src.data == {"kafka": {"bootstrap": "k:9092"}, "mqtt": {"url": "mqtt://broker:1883"}}


def test_env_default_used_only_when_unset():
    text = "kafka:\n  bootstrap: ${KB:-localhost:9092}\nhttp:\n  port: ${PORT:-8081}\n"
    assert parse_yaml(text, "c.yaml", {}).data["kafka"]["bootstrap"] == "localhost:9092"
    assert parse_yaml(text, "c.yaml", {"KB": "k:1"}).data["kafka"]["bootstrap"] == "k:1"
    cfg = validate(Config, parse_yaml(text, "c.yaml", {}))
    assert cfg.http.port == 8081  # the substituted text is validated as the field's type
    assert parse_yaml("a: ${E:-}\n", "c.yaml", {}).data == {"a": ""}


def test_unset_env_without_default_is_a_located_error():
    with pytest.raises(SourceError) as exc:
        parse_yaml("kafka:\n  bootstrap: ${KAFKA_BOOTSTRAP}\n", "c.yaml", {})
    [p] = problems(exc)
    assert (p.file, p.line, p.key) == ("c.yaml", 2, "kafka.bootstrap")
    assert "environment variable KAFKA_BOOTSTRAP is not set" in p.message
    assert "${KAFKA_BOOTSTRAP:-default}" in p.message


def test_load_config_reads_the_process_environment(tmp_path, monkeypatch):
    path = write(tmp_path, "kafka:\n  bootstrap: ${YUJING_TEST_KB}\n")
    monkeypatch.setenv("YUJING_TEST_KB", "from-env:9092")
    assert load_config(path).kafka.bootstrap == "from-env:9092"
    monkeypatch.delenv("YUJING_TEST_KB")
    with pytest.raises(SourceError, match="YUJING_TEST_KB is not set"):
        load_config(path)


def test_env_is_not_substituted_in_comments_or_non_strings():
    src = parse_yaml("# ${NOPE}\na: 5\nb: '$NOT_BRACED'\n", "c.yaml", {})
    assert src.data == {"a": 5, "b": "$NOT_BRACED"}


# --- Located -------------------------------------------------------------------------------


def test_line_of_falls_back_to_the_deepest_known_prefix():
    src = parse_yaml("a:\n  b:\n    - x\n    - y: 1\n", "c.yaml", {})
    assert src.line_of(("a",)) == 1
    assert src.line_of(("a", "b", 1, "y")) == 4
    assert src.line_of(("a", "b", 1, "zzz")) == 4
    assert src.line_of(("a", "nope")) == 1
    assert src.line_of(("other",)) == 1  # the document itself


def test_load_yaml_reads_a_file(tmp_path):
    path = write(tmp_path, "a: 1\n", "x.yaml")
    src = load_yaml(path, env={})
    assert src.data == {"a": 1} and src.file == str(path)


def test_problem_str_without_line_or_key():
    assert str(Problem("f.yaml", 0, "", "boom")) == "f.yaml: boom"
    assert str(Problem("f.yaml", 3, "a.b", "boom")) == "f.yaml:3: a.b: boom"


# --- time zone -----------------------------------------------------------------------------


def test_timezone_defaults_to_shanghai_and_is_a_zoneinfo(tmp_path):
    cfg = load_config(write(tmp_path, "# nothing set\n"))
    assert cfg.timezone == "Asia/Shanghai"
    assert str(cfg.tz) == "Asia/Shanghai"
    assert load_config(REPO / "config.yaml").timezone == "Asia/Shanghai"


def test_timezone_accepts_any_iana_zone(tmp_path):
    assert load_config(write(tmp_path, "timezone: UTC\n")).tz.key == "UTC"
    assert load_config(write(tmp_path, "timezone: Asia/Urumqi\n")).timezone == "Asia/Urumqi"


@pytest.mark.parametrize("zone", ["Asia/Shangai", "UTC+8", "../etc/passwd", ""])
def test_an_unknown_timezone_is_a_located_error_with_the_fix(tmp_path, zone):
    path = write(tmp_path, f"log_level: info\ntimezone: '{zone}'\n")
    with pytest.raises(SourceError) as exc:
        load_config(path)
    [p] = problems(exc)
    assert (p.file, p.line, p.key) == (str(path), 2, "timezone")
    assert f"unknown time zone {zone!r}" in p.message and "Asia/Shanghai" in p.message

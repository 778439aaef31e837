"""A YAML file holding a control character or bytes that are not UTF-8 is a located
SourceError (file, line, what to do), like any other bad file: found by the hypothesis run
over the config, rules, roster and tokens files (test_file_decoders_fuzz.py), where PyYAML's
ReaderError and Python's UnicodeDecodeError escaped as tracebacks."""

from __future__ import annotations

import pytest

from yujing.config import load_config
from yujing.yamlsrc import SourceError, load_yaml, parse_yaml


@pytest.mark.parametrize("text", ["\x1f", "kafka:\n  partitions: 4\x07\n", "a: b\x00"])
def test_a_control_character_is_a_located_error(text):
    with pytest.raises(SourceError) as exc:
        parse_yaml(text, "c.yaml")
    (problem,) = exc.value.problems
    assert problem.file == "c.yaml" and problem.line >= 1
    assert "control character" in problem.message and "U+" in problem.message


def test_bytes_that_are_not_utf8_are_a_located_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"kafka:\n  partitions: 4\n  compression: \xff\xfe\n")
    with pytest.raises(SourceError) as exc:
        load_config(path)
    (problem,) = exc.value.problems
    assert problem.file == str(path) and problem.line == 3
    assert "UTF-8" in problem.message


def test_the_line_of_a_control_character_is_named(tmp_path):
    path = tmp_path / "roster.yaml"
    path.write_text("timezone: Asia/Shanghai\npeople:\n  - id: a\x1b[31m\n", encoding="utf-8")
    with pytest.raises(SourceError) as exc:
        load_yaml(path)
    assert exc.value.problems[0].line == 3

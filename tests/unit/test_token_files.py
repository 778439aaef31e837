"""Tokens as a new operator makes them, and `config check` of every file a config names
(issue 12, findings 11 and 12).

`yujing token new ... >> tokens.yaml` used to write entries without the `tokens:` header;
`config check` passed and the gateway refused to start. Now `--file` appends safely
(the header, mode 0600, a re-read before the write), person tokens are printed as a hash
for console.tokens, and `config check` reads the tokens file, the roster, the registry,
the rules and the models they name, with located errors.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yujing.cli.app import app
from yujing.config import load_config
from yujing.connectors.auth import load_tokens
from yujing.yamlsrc import SourceError

runner = CliRunner()


def run(*args: str, env: dict | None = None, input: str | None = None):
    return runner.invoke(app, list(args), env=env, input=input)


def token_from(stderr: str) -> str:
    [line] = [x for x in stderr.splitlines() if x.startswith("# ") and " " not in x[2:]]
    return line[2:]


# --- token new --file ----------------------------------------------------------------------

def test_token_new_file_creates_the_file_with_its_header_and_mode_0600(tmp_path: Path):
    f = tmp_path / "tokens.yaml"
    r1 = run("token", "new", "--gateway", "humen", "--station", "DG-HM-*", "--file", str(f))
    assert r1.exit_code == 0, r1.output
    assert f.read_text().startswith("tokens:\n")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    r2 = run("token", "new", "--gateway", "factory-17", "--enterprise", "ENT-17", "--file", str(f))
    assert r2.exit_code == 0, r2.output
    tokens = load_tokens(f)
    assert len(tokens) == 2
    for r, gw in ((r1, "humen"), (r2, "factory-17")):
        assert tokens.identify(f"Bearer {token_from(r.stderr)}").gateway == gw
        assert token_from(r.stderr) not in f.read_text()        # the file holds hashes only
    assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_token_new_file_keeps_comments_and_a_file_without_entries(tmp_path: Path):
    f = tmp_path / "tokens.yaml"
    f.write_text("# gateways of the bureau\ntokens:\n")
    f.chmod(0o600)
    r = run("token", "new", "--gateway", "city", "--all-stations", "--file", str(f))
    assert r.exit_code == 0, r.output
    assert f.read_text().startswith("# gateways of the bureau\ntokens:\n")
    assert len(load_tokens(f)) == 1


def test_token_new_file_refuses_a_world_readable_file(tmp_path: Path):
    f = tmp_path / "tokens.yaml"
    f.write_text("tokens:\n")
    f.chmod(0o644)
    r = run("token", "new", "--gateway", "city", "--all-stations", "--file", str(f))
    assert r.exit_code == 2
    assert "chmod 600" in r.stderr and str(f) in r.stderr
    assert f.read_text() == "tokens:\n"


def test_token_new_file_refuses_a_broken_file_and_names_the_problem(tmp_path: Path):
    f = tmp_path / "tokens.yaml"
    f.write_text("- gateway: old\n  sha256: " + "0" * 64 + "\n  all_stations: true\n")
    f.chmod(0o600)
    before = f.read_text()
    r = run("token", "new", "--gateway", "city", "--all-stations", "--file", str(f))
    assert r.exit_code == 2
    assert f"{f}:1" in r.stderr and "tokens:" in r.stderr
    assert f.read_text() == before


def test_token_new_file_refuses_a_file_it_cannot_append_to_cleanly(tmp_path: Path):
    f = tmp_path / "tokens.yaml"
    f.write_text("tokens: []\n")
    f.chmod(0o600)
    r = run("token", "new", "--gateway", "city", "--all-stations", "--file", str(f))
    assert r.exit_code == 2 and "by hand" in r.stderr
    assert f.read_text() == "tokens: []\n"


@pytest.mark.parametrize("text", [
    "tokens:\n", "{}\n", "", "tokens: []\n", "- gateway: a\n",
    "tokens:\n  - gateway: a\n    sha256: " + "1" * 64 + "\n    all_stations: true\n",
    "tokens:\n  - gateway: a\n    sha256: " + "1" * 64 + "\n",
    "tokens:\n  - {gateway: a, sha256: '" + "1" * 64 + "', all_stations: true}\n"
    "  - {gateway: b, sha256: '" + "1" * 64 + "', all_stations: true}\n",
    "tokens: {gateway: a}\n", "tokens:\n  - gateway: [\n"])
def test_config_check_judges_a_tokens_file_exactly_as_the_gateway_loads_it(tmp_path: Path, text):
    (tmp_path / "tokens.yaml").write_text(text)
    try:
        load_tokens(tmp_path / "tokens.yaml")
        gateway_starts = True
    except SourceError:
        gateway_starts = False
    r = run("config", "check", str(write_config(tmp_path, tokens="tokens.yaml")))
    assert (r.exit_code == 0) == gateway_starts, r.output


# --- person tokens -------------------------------------------------------------------------

def test_token_new_person_prints_the_token_once_and_a_hashed_config_line(tmp_path: Path):
    r = run("token", "new", "--person", "zhang.wei")
    assert r.exit_code == 0, r.output
    token = token_from(r.stderr)
    line = r.stdout.strip()
    assert line == f"zhang.wei: sha256:{hashlib.sha256(token.encode()).hexdigest()}"
    assert token not in r.stdout
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"console:\n  tokens:\n    {line}\n")
    assert load_config(cfg).console.tokens["zhang.wei"].startswith("sha256:")


def test_token_new_needs_a_gateway_or_a_person_not_both():
    assert run("token", "new").exit_code == 2
    r = run("token", "new", "--person", "a", "--gateway", "g", "--all-stations")
    assert r.exit_code == 2 and "either" in r.stderr


def test_token_hash_turns_a_token_a_person_already_has_into_its_config_line():
    r = run("token", "hash", "--person", "zhang.wei", input="t-zhang-wei-0123456789\n")
    assert r.exit_code == 0, r.output
    digest = hashlib.sha256(b"t-zhang-wei-0123456789").hexdigest()
    assert r.stdout.strip() == f"zhang.wei: sha256:{digest}"


# --- config check of every named file -----------------------------------------------------

def write_config(tmp: Path, **extra: str) -> Path:
    (tmp / "rules").mkdir(exist_ok=True)
    lines = ["worker:", "  rules_dir: rules"]
    if "models" in extra:
        lines.append(f"  models_dir: {extra.pop('models')}")
    if "tokens" in extra:
        lines += ["http:", f"  tokens_file: {extra.pop('tokens')}"]
    if "roster" in extra:
        lines += ["alerts:", f"  roster: {extra.pop('roster')}"]
    cfg = tmp / "config.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def test_config_check_reads_the_tokens_file_the_readme_used_to_make(tmp_path: Path):
    r = run("token", "new", "--gateway", "humen", "--station", "DG-HM-*")
    (tmp_path / "tokens.yaml").write_text(r.stdout + "\n")       # `>> tokens.yaml`, no header
    cfg = write_config(tmp_path, tokens="tokens.yaml")
    r = run("config", "check", str(cfg))
    assert r.exit_code == 2, r.output
    assert f"{tmp_path / 'tokens.yaml'}:1" in r.stderr and "tokens:" in r.stderr


def test_config_check_names_a_missing_tokens_file_and_a_broken_roster(tmp_path: Path):
    (tmp_path / "roster.yaml").write_text("people:\n  - id: a1\n    nmae: 张三\n")
    cfg = write_config(tmp_path, tokens="nowhere.yaml", roster="roster.yaml")
    r = run("config", "check", str(cfg))
    assert r.exit_code == 2, r.output
    assert f"{tmp_path / 'nowhere.yaml'}: file not found" in r.stderr
    assert f"{tmp_path / 'roster.yaml'}:3" in r.stderr             # both reported, each located


def test_config_check_names_a_model_a_rule_needs_that_the_registry_lacks(tmp_path: Path):
    (tmp_path / "models").mkdir()
    cfg = write_config(tmp_path, models="models")
    (tmp_path / "rules" / "a.yaml").write_text(
        "rules:\n  - id: jumpy\n    name: 跳变\n    hazard: test\n"
        "    grades: {yellow: 'anomaly(model=jumpy-if) >= 0.9'}\n"
        "    clear: 'anomaly(model=jumpy-if) < 0.5'\n")
    r = run("config", "check", str(cfg))
    assert r.exit_code == 2, r.output
    assert f"{tmp_path / 'rules' / 'a.yaml'}:5: rules[0].grades" in r.stderr and "jumpy-if" in r.stderr
    assert "yujing models train" in r.stderr


def test_config_check_passes_a_config_whose_files_are_all_good(tmp_path: Path):
    r = run("token", "new", "--gateway", "humen", "--station", "DG-HM-*",
            "--file", str(tmp_path / "tokens.yaml"))
    assert r.exit_code == 0
    cfg = write_config(tmp_path, tokens="tokens.yaml")
    r = run("config", "check", str(cfg))
    assert r.exit_code == 0, r.output
    assert "tokens.yaml (1 token)" in r.stdout


# --- the duty CLI acts with the person's own token ------------------------------------------

def test_duty_cli_wants_the_persons_token_from_the_environment(tmp_path: Path):
    token = "t-zhang-wei-0123456789"
    digest = hashlib.sha256(token.encode()).hexdigest()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"console:\n  tokens:\n    zhang.wei: sha256:{digest}\n"
                   "  public_url: http://127.0.0.1:9\n")
    env = {k: v for k, v in os.environ.items() if k != "YUJING_TOKEN"}
    r = run("ack", "X", "--as", "zhang.wei", "--config", str(cfg), env={**env, "YUJING_TOKEN": ""})
    assert r.exit_code == 2 and "YUJING_TOKEN" in r.stderr
    r = run("ack", "X", "--as", "zhang.wei", "--config", str(cfg),
            env={**env, "YUJING_TOKEN": "t-someone-else-0123456789"})
    assert r.exit_code == 2 and "not the token of zhang.wei" in r.stderr
    r = run("ack", "X", "--as", "zhang.wei", "--config", str(cfg), env={**env, "YUJING_TOKEN": token})
    assert r.exit_code == 1 and "not reachable" in r.stderr       # got as far as calling the API


@pytest.mark.parametrize("mode", [0o640, 0o600])
def test_token_new_file_accepts_a_file_the_service_group_may_read(tmp_path: Path, mode: int):
    f = tmp_path / "tokens.yaml"
    f.write_text("tokens:\n")
    f.chmod(mode)
    r = run("token", "new", "--gateway", "city", "--all-stations", "--file", str(f))
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(f.stat().st_mode) == mode

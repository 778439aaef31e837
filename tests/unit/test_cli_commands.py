"""The command tree of ``yujing``: names, order (that of ``--help``), hidden commands and
the console script, so that moving commands between modules changes none of them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from typer.main import get_command

from yujing.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
TREE = {
    "run": None, "demo": None, "gateway": None, "worker": None, "mqtt-broker": None,
    "backtest": None, "sink": None, "watchdog": None, "ack": None, "note": None, "clear": None,
    "report": None, "mqtt-acl": None,
    "config": ["check"], "rules": ["check", "test"],
    "models": ["train", "evaluate", "list", "keygen", "score"],
    "deadletter": ["tail"], "topics": ["check", "apply"], "token": ["new", "hash"],
    "roster": ["show", "check"],
    "silence": ["add", "list", "expire"],
    "notice": ["send", "list", "ack"],
}


def test_commands_and_groups_in_help_order():
    root = get_command(app)
    with root.make_context("yujing", ["--help"], resilient_parsing=True) as ctx:
        assert root.list_commands(ctx) == list(TREE)
        for name, subs in TREE.items():
            cmd = root.commands[name]
            if subs is None:
                assert not hasattr(cmd, "commands"), name
            else:
                assert cmd.list_commands(ctx) == subs, name
    assert [n for n, c in root.commands.items() if c.hidden] == ["mqtt-broker"]


def test_the_console_script_is_the_cli_app():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["scripts"] == {"yujing": "yujing.cli.app:main"}


def test_the_cli_loads_no_broker_client_or_data_library_until_a_command_runs():
    """``yujing --help`` stays quick: faust, aiokafka, aiohttp, paho, influxdb_client,
    amqtt, pandas and matplotlib are imported by the commands that use them."""
    heavy = ("faust", "aiokafka", "aiohttp", "paho", "influxdb_client", "amqtt", "apprise",
             "pandas", "matplotlib", "sklearn")
    code = ("import sys, yujing.cli.app; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"

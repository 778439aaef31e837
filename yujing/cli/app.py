"""The ``yujing`` command line: the typer app, built from one module per command group.

This file is the table of contents: the order here is the order of ``yujing
--help``. The commands themselves live in run.py (the processes), backtest.py,
duty.py (roster, ack, note, clear, silence), config.py, rules.py, models.py,
deadletter.py, topics.py, tokens.py, mqtt_acl.py, report.py and notice.py.
"""

from __future__ import annotations

import typer

from yujing.cli import (
    backtest,
    config,
    deadletter,
    duty,
    models,
    mqtt_acl,
    notice,
    report,
    rules,
    run,
    tokens,
    topics,
    watchdog,
)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Yujing (预警): real-time monitoring and early warning.")

app.command()(run.run)
app.command()(run.demo)
app.command()(run.gateway)
app.command()(run.worker)
app.command("mqtt-broker", hidden=True)(run.mqtt_broker)
app.command()(backtest.backtest)
app.command()(run.sink)
app.command()(watchdog.watchdog)
app.command()(duty.ack)
app.command()(duty.note)
app.command()(duty.clear)
app.command()(report.report)
app.command("mqtt-acl")(mqtt_acl.mqtt_acl)

app.add_typer(config.app, name="config")
app.add_typer(rules.app, name="rules")
app.add_typer(models.app, name="models")
app.add_typer(deadletter.app, name="deadletter")
app.add_typer(topics.app, name="topics")
app.add_typer(tokens.app, name="token")
app.add_typer(duty.roster_app, name="roster")
app.add_typer(duty.silence_app, name="silence")
app.add_typer(notice.app, name="notice")


def main() -> None:
    app()

"""``yujing notice``: send safety notices (安全提示) to enterprises and follow who acknowledged.

Through the running gateway's ``/v1/notices`` as the acting person (``--as`` and
``$YUJING_TOKEN``, like ``yujing ack``): only the bureau's people may send, an
enterprise's people see and acknowledge the notices sent to them.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from yujing import clock
from yujing.alerts.notices import STATUS_WORDS
from yujing.cli.duty import ApiOpt, AsOpt, ConfigOpt, _client

app = typer.Typer(help="Safety notices (安全提示/通知) to enterprises: send, list, acknowledge.",
                  no_args_is_help=True)

@app.command("send")
def send(as_: AsOpt, title: Annotated[str, typer.Option(help="标题")],
         body: Annotated[str, typer.Option(help="正文")],
         to_tag: Annotated[list[str] | None, typer.Option(
             "--to-tag", help="industry tag, e.g. 粉尘涉爆 (repeat)")] = None,
         to_town: Annotated[list[str] | None, typer.Option(
             "--to-town", help="town or park (repeat)")] = None,
         to: Annotated[list[str] | None, typer.Option(
             "--to", help="enterprise id (repeat)")] = None,
         kind: Annotated[str, typer.Option(help="防御提示, 停工提示 ... (alerts.notices.kinds)")]
         = "安全提示",
         severity: Annotated[str, typer.Option(help="info, warning or urgent")] = "warning",
         link: Annotated[str, typer.Option(help="a link to the full text")] = "",
         config: ConfigOpt = None, api: ApiOpt = None) -> None:
    """Send a notice; prints the enterprises it reached and waits until the worker has it."""
    c = _client(config, api, as_)
    out = c.post("/v1/notices", {"title": title, "body": body, "kind": kind,
                                 "severity": severity, "link": link,
                                 "to": {"tags": to_tag or [], "towns": to_town or [],
                                        "enterprises": to or []}})
    nid = out["notice"]
    typer.echo(f"{nid}: to {len(out['enterprises'])} enterprises: {', '.join(out['enterprises'])}")
    deadline = clock.monotonic() + 20
    while clock.monotonic() < deadline:
        if any(n["id"] == nid for n in c.get("/v1/notices")):
            typer.echo(f"{nid}: sent")
            return
        time.sleep(0.3)
    typer.echo(f"{nid}: handed over, but no worker took it within 20s: is a worker running? "
               "(`yujing run`)", err=True)
    raise typer.Exit(1)


@app.command("list")
def list_(as_: AsOpt, config: ConfigOpt = None, api: ApiOpt = None) -> None:
    """Notices the person may see, with 已确认 x/y and each enterprise's status."""
    out = _client(config, api, as_).get("/v1/notices")
    if not out:
        typer.echo("no notices / 暂无通知")
    for n in out:
        typer.echo(f"{n['id']}  【{n['kind']}】{n['title']}  已确认 {n['acked']}/{n['total']}")
        for t in n["targets"]:
            st = STATUS_WORDS[t["status"]]
            acks = "; ".join(f"{a['kind']} by {a['by']}" for a in t.get("acks", []))
            more = f" ({t.get('reminders', 0)} reminders)" if t.get("reminders") else ""
            typer.echo(f"    {t['enterprise']:<12} {t['name']}  {st.zh}/{st.en}{more}  {acks}")


@app.command("ack")
def ack(notice: str, as_: AsOpt,
        done: Annotated[bool, typer.Option("--done", help="已落实 (carried out) rather than "
                                                          "已收到 (received)")] = False,
        config: ConfigOpt = None, api: ApiOpt = None) -> None:
    """Acknowledge a notice for your enterprise."""
    out = _client(config, api, as_).post(f"/v1/notices/{notice}/ack",
                                         {"ack": "done" if done else "received"})
    typer.echo(f"{notice}: {out['ack']} for {out['enterprise']} by {out['by']}")

"""No configured secret shows where other people look (issue 12, finding 10): a whole
`yujing run` with a password in its MQTT URL, tokens in its notification URLs (one a
`feishu://` whose token is its host part, failing here, so its error lands on the timeline),
an ingest token, a console token, a link secret and an InfluxDB token. After a warning is
raised and delivered, every log line, every process's argv (what `ps` shows) and the
warning's timeline are searched for each secret."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import yaml

from tests.support.console import HASHED, TOKENS
from tests.support.readings import rain
from tests.support.run import start_run, stop_run, write_config
from yujing.connectors.auth import hash_token

SECRETS = {
    "mqtt": "MqttPw-7f3a9c1e5b",
    "json": "HookPw-2b8d4f6a0c",
    "feishu": "FeishuTok-9e1c3a5b7d2f4a6c",
    "ingest": "IngestTok-4c6e8a0b2d4f6a8c0e2a",
    "link": "LinkSecret-1a3c5e7b9d0f2a4c6e8b",
    "influx": "InfluxTok-5d7f9b1c3e5a7c9e1b3d",
}


def cmdlines(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            pass
    return out


def children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), so nothing the supervisor starts is
    missed, including brokers."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        todo += kids
    return found


async def test_no_secret_in_logs_argv_or_timelines(receiver, mosq, victoria, tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [
        {"gateway": "hm", "sha256": hash_token(SECRETS["ingest"]), "all_stations": True}]}))
    tokens.chmod(0o600)
    config, http_port, mqtt_port = write_config(
        tmp_path, receiver.port,
        mqtt={"url": f"mqtt://gw:{SECRETS['mqtt']}@127.0.0.1:{mosq.port}"},
        http={"tokens_file": str(tokens)},
        notify={"default": [f"json://duty:{SECRETS['json']}@127.0.0.1:{receiver.port}/hook",
                            f"feishu://{SECRETS['feishu']}", "yujing://"]},
        console={"tokens": HASHED, "link_secret": SECRETS["link"]},
        alerts={"delivery": {"retries": 1, "backoff": "100ms", "timeout": "3s"}},
        influx={"url": victoria.url, "token": SECRETS["influx"], "org": "o", "bucket": "b"})
    run = start_run(tmp_path, config, http_port, mqtt_port)
    try:
        argv = cmdlines([run.proc.pid, *children_of(run.proc.pid)])
        assert any(" gateway " in a for a in argv) and any(" worker " in a for a in argv)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{run.http}/v1/readings", json=rain("DG-HM-R01"),
                                 headers={"Authorization": f"Bearer {SECRETS['ingest']}"}) as r:
                assert r.status == 200, await r.text()
            await receiver.wait_for(lambda m: "DG-HM-R01" in m.get("message", ""), 90)
            timeline = await _timeline_with_feishu_failure(http, run.http)
    finally:
        stop_run(run)
    logs = run.text() + "".join(p.read_text(errors="replace")
                                for p in tmp_path.rglob("*.log") if p != run.log)
    assert "NOTIFY" in logs, "the yujing:// log channel wrote nothing: the check would be empty"
    assert "feishu://" in timeline
    for name, secret in SECRETS.items():
        assert secret not in logs, f"{name} secret in a log"
        assert all(secret not in a for a in argv), f"{name} secret in a process's argv"
        assert secret not in timeline, f"{name} secret on a timeline"


async def _timeline_with_feishu_failure(http: aiohttp.ClientSession, base: str) -> str:
    """The warning's timeline once the failed feishu:// attempt is on it (no network here)."""
    headers = {"Authorization": f"Bearer {TOKENS['a1']}"}
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        async with http.get(f"{base}/v1/warnings?state=all", headers=headers) as r:
            warnings = await r.json()
        for w in warnings:
            async with http.get(f"{base}/v1/warnings/{w['incident']}", headers=headers) as r:
                text = await r.text()
            if "feishu://" in text:
                return text
        await asyncio.sleep(0.5)
    raise AssertionError(f"no timeline with the feishu:// attempt in 60 s: {text[-2000:]}")


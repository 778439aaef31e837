"""Kafka security on a real Apache Kafka: a broker whose client listener wants TLS and a
SCRAM login (SASL_SSL), and a second listener that wants a client certificate (mutual TLS).
The whole stack (gateway, worker, sink, console) and the CLI work with the SCRAM user; a
client without a login, with a wrong password or without a certificate is refused, fast,
and told so in words with the fix. One broker for the module (tests/support/kafka_tls.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.support.kafka_tls import PASSWORD, USER, SecuredKafka, secured_kafka
from tests.support.readings import rain
from tests.support.run import alive, start_run, stop_run, write_config
from tests.support.services import vm_export
from yujing.config import load_config
from yujing.connectors.kafka import consumer
from yujing.connectors.topics import KafkaRefused, connect
from yujing.kafka_settings import KafkaSecurity

PW_ENV = "YUJING_TEST_KAFKA_PASSWORD"


@pytest.fixture(scope="module")
def secured(kafka_home, tmp_path_factory):
    with secured_kafka(tmp_path_factory.mktemp("kafka-tls"), kafka_home) as k:
        yield k


def password_file(tmp: Path, text: str) -> Path:
    p = tmp / "kafka.password"
    p.write_text(text + "\n", encoding="utf-8")
    p.chmod(0o600)
    return p


def sasl_ssl(k: SecuredKafka, tmp: Path, password: str = PASSWORD, user: str = USER) -> dict:
    return {"bootstrap": k.sasl_ssl, "security": {
        "protocol": "SASL_SSL", "tls": {"ca_file": str(k.pki.ca)},
        "sasl": {"mechanism": "SCRAM-SHA-512", "username": user,
                 "password_file": str(password_file(tmp, password))}}}


def mtls(k: SecuredKafka, client_cert: bool = True) -> dict:
    tls = {"ca_file": str(k.pki.ca)}
    if client_cert:
        tls |= {"cert_file": str(k.pki.client_cert), "key_file": str(k.pki.client_key)}
    return {"bootstrap": k.mtls, "security": {"protocol": "SSL", "tls": tls}}


def cli(tmp: Path, kafka: dict, *args: str) -> tuple[int, str]:
    path = tmp / "cli.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"partitions": 2, **kafka}}), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "yujing", *args, "-c", str(path)],
                          capture_output=True, text=True, timeout=90)
    return done.returncode, done.stdout + done.stderr


def test_the_cli_works_over_sasl_ssl_and_mutual_tls(secured, tmp_path):
    code, out = cli(tmp_path, sasl_ssl(secured, tmp_path), "topics", "apply")
    assert code == 0, out
    code, out = cli(tmp_path, sasl_ssl(secured, tmp_path), "topics", "check")
    assert code == 0 and f"topics on {secured.sasl_ssl} as declared" in out, out
    code, out = cli(tmp_path, mtls(secured), "topics", "check")
    assert code == 0 and f"topics on {secured.mtls} as declared" in out, out
    code, out = cli(tmp_path, sasl_ssl(secured, tmp_path), "deadletter", "tail")
    assert code == 0 and "no dead letters" in out, out


@pytest.mark.parametrize("who", ["no login", "wrong password", "unknown user",
                                 "no client certificate", "CA not trusted"])
def test_a_client_the_brokers_refuse_is_told_so_with_the_fix(secured, tmp_path, who):
    untrusted = sasl_ssl(secured, tmp_path)
    untrusted["security"]["tls"] = {}   # the system CAs do not know the test CA
    kafka, words = {   # built lazily: each writes the one password file of the test
        "no login": lambda: ({"bootstrap": secured.sasl_ssl},
                             "closed the connection before answering"),
        "wrong password": lambda: (sasl_ssl(secured, tmp_path, password="not-the-password"),
                                   f"refused the SCRAM-SHA-512 login of '{USER}'"),
        "unknown user": lambda: (sasl_ssl(secured, tmp_path, user="intruder"),
                                 "refused the SCRAM-SHA-512 login of 'intruder'"),
        "no client certificate": lambda: (mtls(secured, client_cert=False),
                                          "closed the connection before answering"),
        "CA not trusted": lambda: (untrusted, "is not trusted"),
    }[who]()
    code, out = cli(tmp_path, kafka, "topics", "check")
    assert code == 2, out
    assert "认证失败/authentication failed" in out and words in out and "Fix:" in out, out
    assert "not-the-password" not in out and PASSWORD not in out
    code, out = cli(tmp_path, kafka, "deadletter", "tail")
    assert code == 1 and "认证失败/authentication failed" in out and words in out, out


async def test_a_refused_login_is_not_retried_like_a_broker_that_is_starting(secured, tmp_path):
    """connect() waits up to timeout_s for a broker that does not answer yet; a refusal
    ends it at the first try (KafkaRefused, not the RuntimeError of a timeout)."""
    sec = KafkaSecurity.model_validate(sasl_ssl(secured, tmp_path, password="wrong")["security"])
    with pytest.raises(KafkaRefused, match="认证失败/authentication failed"):
        await connect(secured.sasl_ssl, timeout_s=600, security=sec)


async def test_the_whole_stack_runs_with_the_scram_user_over_tls(secured, tmp_path, receiver,
                                                                  victoria, monkeypatch):
    kafka = sasl_ssl(secured, tmp_path)
    # the password reaches the children through the environment, never their argv
    monkeypatch.setenv(PW_ENV, PASSWORD)
    kafka["security"]["sasl"] = {"mechanism": "SCRAM-SHA-256", "username": USER,
                                 "password_env": PW_ENV}
    config, http_port, mqtt_port = write_config(
        tmp_path, receiver.port, kafka={**kafka, "rebalance_timeout_s": 6, "session_timeout_s": 6},
        influx={"url": victoria.url, "token": "t", "org": "o", "bucket": "b", "flush_ms": 200})
    r = start_run(tmp_path, config, http_port, mqtt_port, timeout=120)
    try:
        assert {"worker", "gateway", "sink"} <= set(r.pids), r.text()
        for pid in r.pids.values():
            assert PASSWORD not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        start = int(time.time() * 1000) - 4 * 3_600_000
        async with aiohttp.ClientSession() as http:   # 36 × 1.5 mm in 3 h: orange at 虎门
            async with http.post(f"{r.http}/v1/readings", json=rain("DG-HM-R01", start, 36, 1.5)) as resp:
                assert resp.status == 200, await resp.text()
        orange = await receiver.wait_for(lambda m: "虎门" in m["title"] and "橙色" in m["title"], 120)
        assert orange["message"]
        [series] = await vm_export(victoria.url, '{__name__="rain_gauge_value",station="DG-HM-R01"}',
                                   lambda s: s and len(s[0]["values"]) == 36, timeout=60)
        assert set(series["values"]) == {1.5}
        # the warning event is in yujing.warnings, read back by a SCRAM client of our own
        sec = load_config(config).kafka.security
        c = consumer(secured.sasl_ssl, "yujing.warnings", security=sec, group_id=None,
                     auto_offset_reset="earliest")
        await c.start()
        try:
            got = await c.getmany(timeout_ms=10_000)
            assert any(b"DG-HM-R01" in (rec.value or b"") for recs in got.values() for rec in recs)
        finally:
            await c.stop()
        assert PASSWORD not in r.text()
    finally:
        assert stop_run(r) == 0, r.text()[-3000:]
    assert not any(alive(p) for p in r.pids.values())

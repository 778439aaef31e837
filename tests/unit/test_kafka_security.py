"""kafka.security: what the config accepts and refuses (file, line, key and the fix), the
aiokafka keyword arguments and Faust credentials built from it, the words a refused client
is told, and that no Kafka client in the package is built around the one constructor."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from yujing.config import load_config
from yujing.connectors.kafka_security import AUTH_FAILED, aiokafka_auth, explain
from yujing.kafka_settings import KafkaSecurity
from yujing.streams.app import app_settings, faust_credentials
from yujing.yamlsrc import SourceError

PKG = Path(__file__).resolve().parents[2] / "yujing"
SECRET = "pa55-Word-never-shown"


def config(tmp_path: Path, security: str, bootstrap: str = "kafka1:9093") -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(f"kafka:\n  bootstrap: {bootstrap}\n  security:\n" + "".join(
        f"    {line}\n" for line in security.strip().splitlines()), encoding="utf-8")
    return p


def secret_file(tmp_path: Path, mode: int = 0o600, name: str = "kafka.password") -> Path:
    p = tmp_path / name
    p.write_text(SECRET + "\n", encoding="utf-8")
    p.chmod(mode)
    return p


def refused(path: Path) -> str:
    with pytest.raises(SourceError) as exc:
        load_config(path)
    text = str(exc.value)
    assert SECRET not in text
    return text


def test_sasl_ssl_with_a_password_file_loads_paths_from_the_config_folder(tmp_path):
    secret_file(tmp_path)
    (tmp_path / "ca.pem").write_text("-")
    cfg = load_config(config(tmp_path, """
protocol: SASL_SSL
sasl: {mechanism: SCRAM-SHA-256, username: yujing, password_file: kafka.password}
tls: {ca_file: ca.pem}"""))
    sec = cfg.kafka.security
    assert sec.sasl is not None and sec.tls is not None
    assert sec.sasl.password_file == tmp_path / "kafka.password"
    assert sec.tls.ca_file == tmp_path / "ca.pem" and sec.tls.check_hostname is True
    assert SECRET not in repr(cfg)


def test_the_default_is_plaintext_and_needs_nothing(tmp_path):
    assert load_config(config(tmp_path, "protocol: PLAINTEXT")).kafka.security.protocol == "PLAINTEXT"


def test_an_inline_password_is_refused_without_echoing_it(tmp_path):
    text = refused(config(tmp_path, f"""
protocol: SASL_SSL
sasl:
  username: yujing
  password: {SECRET}"""))
    assert "config.yaml:5: kafka.security.sasl:" in text
    assert "never write the Kafka password in the config" in text and "password_file" in text


def test_a_password_file_others_may_read_is_refused_like_ssh_does(tmp_path):
    secret_file(tmp_path, 0o644)
    text = refused(config(tmp_path, """
protocol: SASL_SSL
sasl:
  username: yujing
  password_file: kafka.password"""))
    assert "config.yaml:7: kafka.security.sasl.password_file:" in text
    assert "mode 0644" in text and "chmod 600" in text


def test_a_group_readable_client_key_is_refused_and_a_missing_ca_named(tmp_path):
    secret_file(tmp_path, 0o640, "client.key")
    (tmp_path / "client.pem").write_text("-")
    text = refused(config(tmp_path, """
protocol: SSL
tls:
  ca_file: nowhere/ca.pem
  cert_file: client.pem
  key_file: client.key"""))
    assert "kafka.security.tls.ca_file: no such file" in text
    assert "config.yaml:8: kafka.security.tls.key_file:" in text and "chmod 600" in text


def test_an_unset_password_variable_is_refused_at_load(tmp_path, monkeypatch):
    monkeypatch.delenv("YJ_TEST_KAFKA_PW", raising=False)
    path = config(tmp_path, """
protocol: SASL_SSL
sasl: {username: yujing, password_env: YJ_TEST_KAFKA_PW}""")
    assert "environment variable YJ_TEST_KAFKA_PW is not set" in refused(path)
    monkeypatch.setenv("YJ_TEST_KAFKA_PW", SECRET)
    sec = load_config(path).kafka.security
    assert aiokafka_auth(sec)["sasl_plain_password"] == SECRET


@pytest.mark.parametrize("security, words", [
    ("protocol: SASL_PLAINTEXT\nsasl: {mechanism: PLAIN, username: u, password_env: HOME}",
     "PLAIN over SASL_PLAINTEXT sends the password readable on the network: use protocol SASL_SSL"),
    ("protocol: SASL_SSL", "protocol SASL_SSL needs a login: add sasl"),
    ("protocol: SSL\nsasl: {username: u, password_env: HOME}", "protocol SSL sends no login"),
    ("protocol: SASL_PLAINTEXT\nsasl: {username: u, password_env: HOME}\ntls: {}",
     "protocol SASL_PLAINTEXT does not use TLS: use SSL or SASL_SSL, or remove tls"),
    ("protocol: SSL\ntls: {cert_file: c.pem}", "mutual TLS needs both cert_file and key_file"),
    ("protocol: SASL_SSL\nsasl: {username: u, password_env: HOME, password_file: f}",
     "set exactly one of password_file"),
    ("protocol: SASL_SSL\nsasl: {mechanism: SCRAM-SHA-1, username: u, password_env: HOME}",
     "kafka.security.sasl.mechanism"),
    ("protocol: TLS", "kafka.security.protocol"),
])
def test_bad_combinations_fail_at_load_with_the_fix(tmp_path, security, words):
    text = refused(config(tmp_path, security))
    assert "config.yaml:" in text and words in text


def test_security_on_the_embedded_broker_is_refused(tmp_path):
    p = tmp_path / "config.yaml"
    p.write_text("kafka:\n  security:\n    protocol: SSL\n", encoding="utf-8")
    assert "the embedded broker listens on loopback without TLS or SASL" in refused(p)


def sasl_ssl(tmp_path: Path, **tls) -> KafkaSecurity:
    return KafkaSecurity.model_validate({
        "protocol": "SASL_SSL", "tls": tls,
        "sasl": {"mechanism": "SCRAM-SHA-512", "username": "yujing",
                 "password_file": str(secret_file(tmp_path))}})


def test_aiokafka_arguments_check_the_certificate_and_the_host(tmp_path):
    auth = aiokafka_auth(sasl_ssl(tmp_path))
    ctx = auth.pop("ssl_context")
    assert auth == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_plain_username": "yujing", "sasl_plain_password": SECRET}
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    relaxed = aiokafka_auth(sasl_ssl(tmp_path, check_hostname=False))["ssl_context"]
    assert relaxed.verify_mode == ssl.CERT_REQUIRED and not relaxed.check_hostname
    assert aiokafka_auth(KafkaSecurity()) == {"security_protocol": "PLAINTEXT"}


def test_faust_gets_the_same_settings_for_every_client_it_makes(tmp_path):
    sec = sasl_ssl(tmp_path)
    ours = aiokafka_auth(sec)
    theirs = credentials_to_aiokafka_auth(faust_credentials(sec))
    assert {k: v for k, v in theirs.items() if k != "ssl_context"} == \
        {k: v for k, v in ours.items() if k != "ssl_context"}
    assert isinstance(theirs["ssl_context"], ssl.SSLContext)
    ssl_only = KafkaSecurity(protocol="SSL")
    assert credentials_to_aiokafka_auth(faust_credentials(ssl_only))["security_protocol"] == "SSL"
    plain = KafkaSecurity.model_validate({"protocol": "SASL_PLAINTEXT", "sasl": {
        "username": "u", "password_file": str(tmp_path / "kafka.password")}})
    got = credentials_to_aiokafka_auth(faust_credentials(plain))
    assert got["security_protocol"] == "SASL_PLAINTEXT" and got["ssl_context"] is None
    assert faust_credentials(KafkaSecurity()) is None


def test_the_worker_settings_carry_the_credentials(tmp_path):
    secret_file(tmp_path)
    cfg = load_config(config(tmp_path, """
protocol: SASL_SSL
sasl: {username: yujing, password_file: kafka.password}"""))
    creds = app_settings(cfg, "kafka1:9093", embedded=False)["broker_credentials"]
    assert creds.username == "yujing" and creds.protocol.value == "SASL_SSL"
    assert SECRET not in repr(creds)


def test_refusals_are_told_as_authentication_failures_with_the_fix(tmp_path):
    sec = sasl_ssl(tmp_path)
    login = explain(SaslAuthenticationFailed("invalid credentials"), sec, "k:9093")
    assert login is not None and login.startswith(AUTH_FAILED) and "'yujing'" in login
    assert "Fix: check kafka.security.sasl" in login
    closed = explain(KafkaConnectionError("Connection at k:9093 closed"), KafkaSecurity(), "k:9093")
    assert closed is not None and closed.startswith(AUTH_FAILED) and "Fix: set kafka.security" in closed
    assert explain(ConnectionRefusedError(111, "Connection refused"), KafkaSecurity(), "k:9093") is None
    assert SECRET not in login + closed


CONSTRUCTORS = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient"}
# the one constructor module, and the broker-readiness probe that takes the same arguments
BUILDERS = {"connectors/kafka.py": None, "connectors/kafka_broker.py": "auth"}


def test_every_kafka_client_of_the_package_is_built_with_the_security_settings():
    found = []
    for path in sorted(PKG.rglob("*.py")):
        rel = str(path.relative_to(PKG))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in CONSTRUCTORS:
                continue
            spread = [k.value for k in node.keywords if k.arg is None]
            ok = rel in BUILDERS and (BUILDERS[rel] is None or any(
                getattr(v, "id", None) == BUILDERS[rel] for v in spread))
            if rel == "connectors/kafka.py":
                ok = any(isinstance(v, ast.Call) and getattr(v.func, "id", "") == "aiokafka_auth"
                         for v in spread)
            if not ok:
                found.append(f"{rel}:{node.lineno}: {name}(...)")
    assert found == [], "build these through yujing.connectors.kafka (producer/consumer/admin)"

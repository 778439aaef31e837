"""A secured Apache Kafka for the security tests: a throw-away CA, a server certificate for
127.0.0.1 and a client certificate made with Debian's openssl (the `cryptography` package is
not a dependency of the project), SCRAM users made when the storage is formatted, and one
KRaft node with a SASL_SSL listener and a mutual-TLS listener
(yujing/connectors/kafka_broker.py SecuredBrokerSpec)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.kafka import broker_process
from yujing.connectors.embedded import free_port
from yujing.connectors.kafka_broker import SecuredBrokerSpec, prepare
from yujing.connectors.kafka_security import aiokafka_auth
from yujing.kafka_settings import KafkaSecurity

USER, PASSWORD = "yujing", "s3cret-Yujing-1"


@dataclass(frozen=True)
class Pki:
    ca: Path            # the CA certificate (PEM): clients trust it
    server: Path        # server key (PKCS#8) + certificate, for the broker's PEM keystore
    client_cert: Path   # a client certificate signed by the CA (mutual TLS)
    client_key: Path


@dataclass(frozen=True)
class SecuredKafka:
    sasl_ssl: str       # host:port of the SASL_SSL listener
    mtls: str           # host:port of the SSL listener that wants a client certificate
    pki: Pki
    data_dir: Path


def _openssl(*args: str | Path) -> None:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"openssl {' '.join(map(str, args))}: {done.stderr}"


def _signed(d: Path, name: str, subject: str, ext: str, ca: Path, ca_key: Path) -> tuple[Path, Path]:
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
    (d / f"{name}.ext").write_text(ext + "\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", crt, "-days", "2", "-extfile", d / f"{name}.ext")
    key.chmod(0o600)
    return crt, key


def make_pki(d: Path) -> Pki:
    assert shutil.which("openssl"), "openssl is missing: apt-get install -y openssl"
    d.mkdir(parents=True, exist_ok=True)
    ca, ca_key = d / "ca.pem", d / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
             "-days", "2", "-subj", "/CN=yujing test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    crt, key = _signed(d, "server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                       "extendedKeyUsage=serverAuth,clientAuth", ca, ca_key)
    server = d / "server-keystore.pem"
    server.write_text(key.read_text() + crt.read_text())
    server.chmod(0o600)
    client_cert, client_key = _signed(d, "client", "/CN=yujing-client",
                                      "extendedKeyUsage=clientAuth", ca, ca_key)
    return Pki(ca, server, client_cert, client_key)


@contextmanager
def secured_kafka(data_dir: Path, home: Path) -> Iterator[SecuredKafka]:
    """One broker: SCRAM user ``USER``/``PASSWORD`` (SHA-256 and SHA-512) over SASL_SSL, and
    mutual TLS on a second port. Yields once the broker answers an authenticated client."""
    pki = make_pki(data_dir / "pki")
    ports: list[int] = []
    while len(ports) < 3:
        p = free_port()
        if p not in ports:
            ports.append(p)
    spec = SecuredBrokerSpec(data_dir, ports[0], ports[1], keystore=pki.server,
                             truststore=pki.ca, admin_password="admin-Secret-9",
                             mtls_port=ports[2])
    argv = prepare(spec, home, format_args=spec.scram_format_args({USER: PASSWORD}))
    env_name = "YUJING_TEST_KAFKA_ADMIN_PASSWORD"
    os.environ[env_name] = spec.admin_password
    admin = KafkaSecurity.model_validate({
        "protocol": "SASL_SSL", "tls": {"ca_file": str(pki.ca)},
        "sasl": {"mechanism": "SCRAM-SHA-512", "username": "admin", "password_env": env_name}})
    with broker_process(argv, spec.bootstrap, data_dir, aiokafka_auth(admin)):
        yield SecuredKafka(spec.bootstrap, f"{spec.host}:{spec.mtls_port}", pki, data_dir)

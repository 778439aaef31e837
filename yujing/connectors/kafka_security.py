"""``kafka.security`` turned into what the Kafka clients take: the one place that does it.

aiokafka clients get :func:`aiokafka_auth` (security_protocol, ssl_context, sasl_*); the
constructors in yujing/connectors/kafka.py pass it to every producer, consumer and admin
client of the project, and the worker gives Faust the same settings as broker_credentials
(yujing/streams/app.py). Why brokers refuse a client is found out here too
(:func:`diagnose`), so every process and command says it in the same words.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest

from yujing.kafka_settings import KafkaSecurity, KafkaTls, read_password

AUTH_FAILED = "认证失败/authentication failed"
CLOSED = "closed the connection before answering"   # also a broker in the middle of stopping


def ssl_context(tls: KafkaTls | None) -> ssl.SSLContext:
    """A client context that checks the brokers' certificates against ``ca_file`` (or the
    system CAs) and presents the client certificate when one is configured."""
    tls = tls or KafkaTls()
    ctx = create_ssl_context(
        cafile=str(tls.ca_file) if tls.ca_file else None,
        certfile=str(tls.cert_file) if tls.cert_file else None,
        keyfile=str(tls.key_file) if tls.key_file else None)
    ctx.check_hostname = tls.check_hostname   # the certificate itself is still verified
    return ctx


def aiokafka_auth(sec: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin, client)."""
    out: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.uses_tls:
        out["ssl_context"] = ssl_context(sec.tls)
    if sec.sasl is not None:
        out.update(sasl_mechanism=sec.sasl.mechanism, sasl_plain_username=sec.sasl.username,
                   sasl_plain_password=read_password(sec.sasl))
    return out


async def diagnose(bootstrap: str, sec: KafkaSecurity, timeout_s: float = 10.0) -> str | None:
    """Why the brokers refuse this client, in words a person can act on; None when the
    reason is not security (a broker that is down, say) or there is none.

    aiokafka's clients only say "Unable to bootstrap" and log the cause, so one
    connection is made here directly with the same settings and its failure classified.
    A failed start is fast (under a second: measured against Kafka 4.1), not a hang."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        conn = await asyncio.wait_for(create_conn(host, int(port), request_timeout_ms=int(
            timeout_s * 1000), **aiokafka_auth(sec)), timeout_s)
        try:
            await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
        finally:
            conn.close()
    except Exception as exc:
        return explain(exc, sec, f"{host}:{port}")
    return None


def explain(exc: BaseException, sec: KafkaSecurity, where: str) -> str | None:
    """The message for one failed connection (see :func:`diagnose`)."""
    login = f"{sec.sasl.mechanism} login of {sec.sasl.username!r}" if sec.sasl else "no login"
    if isinstance(exc, SaslAuthenticationFailed):
        return (f"{AUTH_FAILED}: the broker at {where} refused the {login}. Fix: check "
                "kafka.security.sasl (username, mechanism, the password in password_file or "
                "password_env) against the SCRAM users of the cluster (kafka-configs.sh "
                "--describe --entity-type users)")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"{AUTH_FAILED}: the certificate of the broker at {where} is not trusted "
                f"({exc.verify_message}). Fix: kafka.security.tls.ca_file must hold the CA that "
                "signed the brokers' certificates, and the address must be one the certificate "
                "names")
    if isinstance(exc, ssl.SSLError):
        return (f"{AUTH_FAILED}: the TLS handshake with {where} failed ({exc.reason}). Fix: "
                "does that listener speak TLS? (kafka.security.protocol SSL or SASL_SSL only "
                "for a TLS listener); one that wants mutual TLS needs tls.cert_file and key_file")
    closed = isinstance(exc, (KafkaConnectionError, ConnectionResetError,
                              asyncio.IncompleteReadError)) and "refused" not in str(exc).lower()
    if closed:
        return (f"{AUTH_FAILED}: the broker at {where} {CLOSED} "
                f"(kafka.security.protocol is {sec.protocol}, {login}): its listener wants TLS, "
                "a SASL login or a client certificate that this client did not offer. Fix: set "
                "kafka.security (protocol, sasl, tls) as the cluster's listener is configured")
    return None

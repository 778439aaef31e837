"""The OpenAPI document (yujing/connectors/openapi.yaml) is valid OpenAPI 3.1 and names exactly
the routes the gateway's server registers: ingest, /healthz, /metrics, the /v1 duty API and
the /console pages, as `yujing gateway` mounts them. A route added without its description (or
a description left behind by a removed route) fails here."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from tests.unit.test_console_bus import MemoryBus
from yujing.config import Config
from yujing.connectors.gateway import Gateway
from yujing.connectors.http import OPENAPI, make_app
from yujing.console.state import Console
from yujing.console.web import mount_console

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "post", "put", "patch", "delete"}


def _doc() -> dict:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def _app(tmp: Path) -> web.Application:
    """The server `yujing gateway` builds (yujing/cli/serve.py), without starting it."""
    cfg = Config.model_validate({"worker": {"registry": str(ROOT / "stations.yaml"),
                                            "data_dir": str(tmp)}})
    app = make_app(Gateway(cfg, "127.0.0.1:9", None), cfg.http.max_body_bytes)
    mount_console(app, Console(cfg, MemoryBus()))
    return app


def _paths(resource: web.AbstractResource) -> list[str]:
    """The OpenAPI paths of one aiohttp resource: a regex alternation (``{action:ack|note}``)
    is one path per word, a static folder is ``{filename}`` under its prefix."""
    if isinstance(resource, web.StaticResource):
        return [resource.canonical + "/{filename}"]
    info = resource.get_info()
    if "path" in info:
        return [info["path"]]
    formatter, pattern = info["formatter"], info["pattern"].pattern
    words = {name: alts.split("|") for name, alts in
             re.findall(r"\(\?P<(\w+)>((?:\w+\|)+\w+)\)", pattern)}
    out = [formatter]
    for name, alts in words.items():
        out = [p.replace("{" + name + "}", a) for p in out for a in alts]
    return out


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            out |= _routes(resource._app)   # its resources' canonical paths carry the prefix
            continue
        for route in resource:
            if route.method != "HEAD":      # aiohttp answers HEAD for every GET
                out |= {(route.method, p) for p in _paths(resource)}
    return out


def test_the_document_is_valid_openapi_3_1():
    doc = _doc()
    assert doc["openapi"].startswith("3.1")
    validate(doc)   # raises with the path of the first problem


def test_every_route_of_the_server_is_documented_and_nothing_else(tmp_path):
    served = _routes(_app(tmp_path))
    documented = {(m.upper(), p) for p, ops in _doc()["paths"].items() for m in ops
                  if m in METHODS}
    assert len(served) > 30     # ingest, /v1 and /console all seen
    assert served - documented == set(), "routes missing from openapi.yaml"
    assert documented - served == set(), "openapi.yaml describes routes the server lacks"


def test_every_operation_says_who_may_call_it_and_how_it_fails():
    doc = _doc()
    schemes = set(doc["components"]["securitySchemes"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            assert "security" in op, f"{where}: say who may call it (security: [] when open)"
            assert {n for req in op["security"] for n in req} <= schemes, where
            codes = set(op["responses"])
            if any("ingestToken" in req for req in op["security"]):
                assert {"401", "413", "429", "503"} <= codes, where
            if any("personToken" in req for req in op["security"]) and path.startswith("/v1/"):
                assert {"401", "429"} <= codes, where
            if op.get("requestBody") and path.startswith("/v1/") and method == "post":
                assert {"400", "413"} & codes, f"{where}: a malformed body's answer"


async def test_the_gateway_serves_the_document(tmp_path):
    async with TestClient(TestServer(_app(tmp_path))) as client:
        resp = await client.get("/openapi.yaml")
        assert resp.status == 200
        assert resp.content_type == "application/yaml"
        assert yaml.safe_load(await resp.read()) == _doc()

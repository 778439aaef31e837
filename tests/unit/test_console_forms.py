"""The console's form posts (login, language) answer a malformed form with 400 and a reason,
never 500: found by the schema-driven fuzz run (tests/integration/test_openapi_fuzz.py), where
``Content-Type: multipart/form-data`` without a boundary made aiohttp's form reader raise."""

from __future__ import annotations

import pytest

from tests.unit.test_console_auth import serve

BAD_FORMS = [
    ("multipart/form-data", b"to=zh&next="),                            # no boundary
    ("multipart/form-data; boundary=x", b"--x\r\nnot a part"),          # a broken part
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--"),
    ("application/x-www-form-urlencoded; charset=nope", b"token=abc"),   # unknown charset
    ("application/x-www-form-urlencoded", b"token=%ff%fe"),             # not UTF-8
]


@pytest.mark.parametrize("path", ["/console/login", "/console/lang"])
@pytest.mark.parametrize(("ctype", "body"), BAD_FORMS)
async def test_a_malformed_form_is_a_400_with_a_reason(path, ctype, body):
    client = await serve()
    try:
        resp = await client.post(path, data=body, headers={"Content-Type": ctype},
                                 allow_redirects=False)
        text = await resp.text()
        assert resp.status in (302, 400), (resp.status, text)
        if resp.status == 400:
            assert "表单" in text and "form" in text, text
    finally:
        await client.close()


async def test_a_good_form_still_logs_in_and_switches_the_language():
    client = await serve()
    try:
        resp = await client.post("/console/lang", data={"to": "en", "next": "/console/map"},
                                 allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/console/map"
        assert resp.cookies["yujing_lang"].value == "en"
    finally:
        await client.close()

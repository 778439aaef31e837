"""The worker's consumers fetch with a short wait (Faust hard-codes 1.5 s)."""

from __future__ import annotations

import faust

from yujing.streams.tuning import shorten_fetch_wait


async def test_fetch_wait_is_shortened():  # aiokafka objects need a running loop
    shorten_fetch_wait(77)
    shorten_fetch_wait(77)  # idempotent: wraps the original once
    app = faust.App("tuning-test", broker="kafka://127.0.0.1:1", store="memory://",
                    web_enabled=False)
    thread = app.consumer._thread
    consumer = thread._create_worker_consumer(app.transport)
    assert consumer._fetch_max_wait_ms == 77
    assert thread._create_worker_consumer.__func__.__wrapped__.__name__ == "_create_worker_consumer"

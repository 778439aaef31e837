"""The task beside the book's agent that runs the changelog fence's rounds.

Apart from streams/changelog.py, which stays plain (no event loop, no clock): this is the
asyncio side, a wake-up and a retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from yujing.streams.changelog import Fence


async def run_rounds(fence: Fence, ack: Callable[[Any], Awaitable[Any]],
                     on_error: Callable[[BaseException], Awaitable[None]]) -> None:
    """Rounds for as long as the agent runs: one as soon as a step is held, the next as soon
    as it ends (steps finished meanwhile wait for it, which is what batches them).
    ``on_error`` is awaited after a failed round (log it, back off) before the retry."""
    wake = asyncio.Event()
    fence.on_held = wake.set
    if fence.held:
        wake.set()
    try:
        while True:
            await wake.wait()
            wake.clear()
            try:
                await fence.round(ack)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                wake.set()
                await on_error(exc)
    finally:
        fence.on_held = lambda: None

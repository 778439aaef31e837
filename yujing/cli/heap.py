"""Keep a long-running process's C heap from fragmenting.

glibc serves a block above its mmap threshold from its own mapping, given back to the
kernel on free, and raises that threshold to the size of every such block freed (up to
32 MB). After the first large numpy temporary is freed, the engine's per-envelope arrays
(a station's retained history merged with the new readings: tens to hundreds of KB) come
from the heap instead, interleaved with blocks that live longer, and the heap fragments.
Measured on the soak's feed through every rule pack (100 stations, 40-reading envelopes,
events up to 240 h): with glibc's default, RSS grew 180 → 555 MB while the memory in use
stayed near 52 MB. Pinned at 64 KB it still grew, by about 16 MB per 50 h of event time;
at 32 KB it stayed at 147 MB from the 27th to the 107th hour. The price is system time in
mmap calls, measured with the RSS in bench/heap.py.

Only glibc has ``mallopt`` and ``mallinfo2``; elsewhere this does nothing and says so.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h; setting it also turns the dynamic threshold off
THRESHOLD = 32 * 1024


def pin_mmap_threshold(threshold: int = THRESHOLD) -> bool:
    """Fix glibc's mmap threshold; True when it took effect."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        log.info("heap: no mallopt in this C library; the mmap threshold stays dynamic")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33+)."""

    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def malloc_stats() -> MallInfo2 | None:
    """glibc's view of this process's heap (``arena``: heap size, ``uordblks``: in use,
    ``fordblks``: free inside it, ``hblks``/``hblkhd``: mmapped blocks and bytes); None
    without glibc 2.33+."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = MallInfo2
    return mallinfo2()

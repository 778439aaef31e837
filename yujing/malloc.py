"""Keep freed memory in the heap of a worker or gateway instead of handing it back to the
kernel.

glibc gives memory back as soon as the free top of its heap passes ``M_TRIM_THRESHOLD``
(128 KiB at first) and serves large blocks with ``mmap`` (from 128 KiB, rising with what
was freed). The rule engine allocates and frees arrays of every size at each envelope (the
flat layout of the series a pass reads, prefix sums, concatenations), so the heap kept
shrinking and growing again: 83,000–125,000 minor page faults per 200,000 readings in
bench/throughput.py, about 300 per envelope, each one a kernel entry that maps and zeroes a
page. With the thresholds below the same run takes 1,300–3,200 faults, and the engine's
passes inside the worker cost what they cost in a replay of the same envelopes (they had
cost 1.3–1.5 times that). The process keeps what its busiest envelope needed (its resident
memory settles at that peak instead of returning to the kernel between envelopes). The
gateway, which builds and frees envelopes the same way, gets the same thresholds.

Only glibc has ``mallopt``; elsewhere nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("yujing.malloc")

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

TRIM_THRESHOLD = 64 << 20    # keep up to 64 MiB free at the top of the heap
TOP_PAD = 16 << 20           # and grow it 16 MiB at a time
MMAP_THRESHOLD = 32 << 20    # glibc's largest: blocks below 32 MiB come from the heap


def keep_freed_memory() -> bool:
    """Set the thresholds; False when this libc has no ``mallopt`` or refuses one."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.info("no mallopt in this libc: the heap keeps its defaults")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD)))
    if not ok:
        log.warning("mallopt refused a threshold: the heap keeps some of its defaults")
    return ok

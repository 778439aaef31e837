"""The worker keeps freed memory in its heap (yujing/malloc.py): the same churn of
array allocations makes fewer page faults with the thresholds set than without."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHURN = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from yujing.malloc import keep_freed_memory
    assert keep_freed_memory()
sizes = np.random.default_rng(0).integers(20_000, 600_000, 400).tolist()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for n in sizes:   # arrays of 160 KB to 4.8 MB made and freed, as the engine's passes do
    a = np.ones(n)
    b = np.concatenate((a, a))
    del a, b
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True,
                         timeout=120, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_heap_keeps_what_was_freed():
    default, kept = faults("default"), faults("keep")
    assert kept < 0.75 * default, (kept, default)

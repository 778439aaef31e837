"""The long-running commands pin glibc's mmap threshold (yujing/cli/heap.py). With glibc's
dynamic threshold, freeing one large block raises the threshold to its size, and from then
on every array below it is carved from the heap (the control case: a 2 MB array after a
32 MB one was freed extends the heap). Pinned, the 2 MB array gets its own mapping, given
back to the kernel when it is freed. What this does to a worker's RSS over days of event
time is measured in bench/heap.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from yujing.cli.heap import malloc_stats

PROBE = """
import sys
import numpy as np
from yujing.cli.heap import malloc_stats, pin_mmap_threshold

if sys.argv[1] == "pinned":
    assert pin_mmap_threshold()
big = np.ones(4_000_000)          # 32 MB, mmapped; freeing it moves a dynamic threshold up
del big
before = malloc_stats()
medium = np.ones(2_000_000 // 8)  # 2 MB: more than the heap has free
after = malloc_stats()
print(after.hblks - before.hblks, (after.arena - before.arena) // 2**20)
"""


def placed(mode: str) -> tuple[int, int]:
    """(new mmapped blocks, heap growth in MB) for the 2 MB array."""
    out = subprocess.run([sys.executable, "-c", PROBE, mode], check=True, capture_output=True,
                         text=True)
    mapped, grown = out.stdout.split()
    return int(mapped), int(grown)


needs_glibc = pytest.mark.skipif(malloc_stats() is None,
                                 reason="glibc 2.33+ only (mallinfo2)")


@needs_glibc
def test_pinned_a_medium_array_gets_its_own_mapping_after_a_large_one_was_freed() -> None:
    assert placed("pinned") == (1, 0)


@needs_glibc
def test_with_glibc_default_it_extends_the_heap() -> None:
    mapped, grown = placed("default")
    assert mapped == 0 and grown >= 1

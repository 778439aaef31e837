"""What the kernel counts for a process, read from /proc: the benches' CPU, wakeup and
page-fault figures (bench/throughput.py, latency_rate.py, warning_events.py)."""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of ``pid`` so far (NaN once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    except (OSError, IndexError, ValueError):
        return float("nan")


def wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid``: how often it slept and was
    woken (a fetch answered, a timer, a handover between its threads)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            total += int(next(ln.split()[1] for ln in status.read_text().splitlines()
                              if ln.startswith("voluntary_ctxt_switches")))
        except (OSError, StopIteration, ValueError):
            pass  # a thread that ended between the listing and the read
    return total


def minor_faults(pid: int) -> int:
    """Minor page faults of ``pid`` so far: memory the kernel had to map (and zero) anew."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])
    except (OSError, IndexError, ValueError):
        return 0

"""The ceiling of row F1 over all fault rows (bench/fault_ceiling.py) on a made-up set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import fault_ceiling, faults

HOUR = faults.HOUR_MS
T0 = 1_600_000_000_000 // HOUR * HOUR


def test_oracles_count_detectable_and_latched_rows_of_each_fault() -> None:
    # one station, 100 hours, one reading a row; a fault on rows 10..19 whose rows 13, 15
    # and 16 are detectable: latched from 13 to 19; a fault on rows 50..54 with none
    ts = T0 + np.arange(100, dtype=np.int64) * HOUR
    visible = np.zeros(100, dtype=bool)
    visible[[13, 15, 16]] = True
    test = pd.DataFrame({"ts": ts, "station": "S1", "metric": "TEMP", "value": 0.0,
                         "visible": visible})
    labels = pd.DataFrame({"start": [ts[10], ts[50]], "end": [ts[19], ts[54]],
                           "station": "S1", "metric": "TEMP", "fault": ["drift", "decouple"]})
    rows = fault_ceiling.oracle_rows(test, labels)
    assert int(rows["fault"].sum()) == 15
    assert np.flatnonzero(rows["detectable"]).tolist() == [13, 15, 16]
    assert np.flatnonzero(rows["latched"]).tolist() == list(range(13, 20))
    c = fault_ceiling.ceiling(rows, far=0.0)
    assert c["detectable"] == pytest.approx(2 * 3 / (15 + 3))  # precision 1, recall 3/15
    assert c["latched"] == pytest.approx(2 * 7 / (15 + 7))
    assert c["all rows at far"] == 1.0
    # a budget of false alarms lowers every oracle: 85 normal rows × 0.1 = 8.5 rows
    b = fault_ceiling.ceiling(rows, far=0.1)
    assert b["latched at far"] == pytest.approx(fault_ceiling.f1(7, 8.5, 15))
    assert b["latched at far"] < c["latched"]
    assert fault_ceiling.f1(0, 3, 15) == 0.0

"""The Faust edge stays thin: the partition runner and the checkpoint codec are plain code.

DESIGN: streams/ holds a plain PartitionRunner; time is passed in (only yujing/clock.py
reads the clock). These modules are imported in a fresh interpreter, so what they pull in
is seen, not what other tests loaded before.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "yujing"
IO = {"faust", "mode", "aiokafka", "paho", "aiohttp", "influxdb_client", "apprise"}
PLAIN = ["yujing.streams.runner", "yujing.streams.checkpoint", "yujing.streams.changelog"]


@pytest.mark.parametrize("module", PLAIN)
def test_plain_streams_modules_load_no_io_library(module: str):
    code = (f"import sys, json; import {module}; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PKG.parent)
    assert set(json.loads(out.stdout)) & IO == set()


@pytest.mark.parametrize("module", PLAIN)
def test_plain_streams_modules_read_no_clock(module: str):
    path = PKG.parent / (module.replace(".", "/") + ".py")
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names |= {f"{node.module}.{a.name}" for a in node.names}
    assert not names & {"time", "datetime", "yujing.clock", "asyncio"}


def test_the_pipeline_package_keeps_its_names():
    from yujing.pipeline import ModelsView, Outcome, Pipeline
    from yujing.pipeline.core import Pipeline as CorePipeline
    assert Pipeline is CorePipeline and Outcome.__module__ == "yujing.pipeline.core"
    assert ModelsView.__module__ == "yujing.pipeline.models_view"

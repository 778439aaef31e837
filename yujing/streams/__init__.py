"""The Faust edge only.

app.py wires the worker's Faust app; evaluator.py is what its agent and timers do;
state.py keeps one runner.PartitionRunner per assigned partition, restored from and
checkpointed to tables.py's Faust table in checkpoint.py's layout, re-reading the
partition with replay.py; alerting.py is the warning book's edge; tuning.py patches
a consumer setting Faust does not expose.
"""

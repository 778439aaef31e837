"""Pure rule logic: schema, loader, window aggregates and the evaluator.

Nothing in this package does network I/O or imports Faust, MQTT, HTTP,
InfluxDB or apprise code (a test checks it).
"""

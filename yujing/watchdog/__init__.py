"""The watchdog process (``yujing watchdog``, and a child of ``yujing run``): it samples
Kafka, the gateway, the workers and the sink, runs the pure checks of
``yujing.alerts.selfcheck`` and tells the duty room directly with apprise, never through
Kafka or the worker it watches. It serves ``/healthz`` and ``/heartbeat``."""

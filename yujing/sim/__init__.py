"""Scenario simulator: publishes readings over real MQTT for the demo and benchmarks."""

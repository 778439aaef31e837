"""Duty console (web) and the Prometheus metrics of every process."""

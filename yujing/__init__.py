"""Yujing (预警): real-time monitoring and early-warning stream processor."""

__version__ = "0.1.0"

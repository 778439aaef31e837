"""Offline replay of readings through the worker's pipeline: backtests, rule tests, statistics, plots."""

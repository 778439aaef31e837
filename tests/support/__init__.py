"""Helpers shared by the test tiers (servers, readings, the yujing-run driver).

Plain modules, imported by name; the fixtures built on them live in tests/conftest.py so
that every tier finds one fixture per service.
"""

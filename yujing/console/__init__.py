"""Duty console (值班台): the /v1 duty API, the web pages at /console, and their read model.

Modules: state (read model, command sender), bus (what it needs from Kafka), session
(who is asking), api (/v1), views (JSON of the pages), pages (HTML), web (/console and
mounting both), rights, thresholds, feeds, health, i18n, mapsvg.
"""

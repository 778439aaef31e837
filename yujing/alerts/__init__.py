"""Warning lifecycle, routing and messages.

Everything here except ``notify.py`` is pure: no I/O, time passed in.
"""

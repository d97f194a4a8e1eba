"""Plumbing shared by every service: config, database, events, bus, HTTP edge.

Nothing here knows about a particular service; services know about this package only.
"""

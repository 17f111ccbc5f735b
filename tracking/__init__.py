"""LiveRec tracking: the tracker, the ingest endpoint and the append-only event log.

Knows nothing of recommendations; it publishes "events appended" to subscribers
registered through :mod:`tracking.hooks`.
"""

"""The Celery beat schedule LiveRec's projections need: ``CELERY_BEAT_SCHEDULE = beat_schedule()``."""
from __future__ import annotations

REALTIME = "liverec.realtime"
BATCH = "liverec.batch"


def beat_schedule(catch_up_seconds: float = 30.0, train_sequential_hours: float | None = 6.0,
                  retention_seconds: float = 3600.0) -> dict[str, dict]:
    """The periodic tasks, keyed by entry name (merge a site's own entries into the result).

    - catch-up: the realtime projection applies events whose enqueue failed while the broker
      was down (the log is in PostgreSQL; the projection resumes from its cursor);
    - association catch-up: the association and trending fold is requested by the realtime
      task; this applies whatever a lost request left behind;
    - retention: deletes events older than ``LIVEREC_TRACKING["RETENTION_DAYS"]`` (None: never);
    - event partitions: the event log's partitions, ``EVENT_PARTITIONS_AHEAD`` intervals ahead
      of the clock (every 6 hours);
    - association pruning: item pairs whose decayed weight is negligible, once a day;
    - sequence-model training: ``sequential/next-item`` retrains on the whole log
      (``train_sequential_hours=None`` leaves it to ``manage.py recsys_train``); requests keep
      the newest stored model while a new one trains;
    - sequence-model training by event volume, checked every 5 minutes: the first model once
      ``LIVEREC["SEQUENTIAL"]["FIRST_TRAINING_MIN_EVENTS"]`` engaged events are logged, then a
      warm start every ``RETRAIN_AFTER_EVENTS`` (a new site gets its model within minutes).
    """
    schedule = {
        "liverec-catch-up": {"task": "recsys.tasks.process_events", "schedule": float(catch_up_seconds),
                             "options": {"queue": REALTIME, "expires": 60}},
        "liverec-catch-up-associations": {"task": "recsys.tasks.fold_associations",
                                          "schedule": float(catch_up_seconds),
                                          "options": {"queue": BATCH, "expires": 60}},
        "liverec-retention": {"task": "tracking.tasks.apply_retention", "schedule": float(retention_seconds),
                              "options": {"queue": BATCH, "expires": 3600}},
        "liverec-event-partitions": {"task": "tracking.tasks.ensure_event_partitions", "schedule": 6 * 3600.0,
                                     "options": {"queue": BATCH, "expires": 3600}},
        "liverec-prune-associations": {"task": "recsys.tasks.prune_associations", "schedule": 24 * 3600.0,
                                       "options": {"queue": BATCH, "expires": 3600}},
    }
    schedule["liverec-retrain-sequential-if-due"] = {"task": "recsys.tasks.retrain_sequential_if_due",
                                                     "schedule": 300.0, "options": {"queue": BATCH, "expires": 300}}
    if train_sequential_hours:
        schedule["liverec-train-sequential"] = {"task": "recsys.tasks.train_sequential",
                                                "schedule": float(train_sequential_hours) * 3600.0,
                                                "options": {"queue": BATCH}}
    return schedule

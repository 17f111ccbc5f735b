"""The append-only event log: the source of truth every projection is rebuilt from."""
from __future__ import annotations

import contextvars
import uuid

from django.contrib.postgres.indexes import BrinIndex
from django.db import models

SCHEMA_VERSION = 1


class EventQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: D401 - the log is immutable
        raise TypeError("The event log is append-only: events cannot be updated.")

    def delete(self):
        _refuse_delete()
        return super().delete()


# Set only by tracking.privacy while it erases (forget a visitor, retention): deleting
# events anywhere else would leave projections holding data the log no longer has.
ERASING = contextvars.ContextVar("liverec_erasing", default=False)


def _refuse_delete() -> None:
    if not ERASING.get():
        raise TypeError("Events are deleted only by tracking.privacy (forget_visitor, forget_user, "
                        "apply_retention), which also erases the projections derived from them.")


class TransactionIdField(models.Field):
    """PostgreSQL ``xid8``: the id of the transaction that appended the row.

    Projections read the log in (txid, id) order and only below the oldest running
    transaction, so a row whose transaction commits late is never skipped (ids are
    assigned before commit, so an id cursor alone would jump over it).
    """

    def db_type(self, connection):
        return "xid8"

    def from_db_value(self, value, expression, connection):
        return None if value is None else int(str(value))


class Event(models.Model):
    """One thing a visitor did, as reported (``occurred_at``) and as received.

    Rows are never updated. They are deleted only by the privacy services
    (forget a visitor, retention), which also drop the derived projections.

    The table is partitioned by range of ``received_at`` (``tracking.partitions``); its
    primary key in the database is (id, received_at), ids still unique by their sequence.
    """

    class Source(models.TextChoices):
        BROWSER = "browser"
        SERVER = "server"
        IMPORT = "import"

    id = models.BigAutoField(primary_key=True)
    # Unique through EventKey: a partitioned table's unique indexes must include the partition key.
    uuid = models.UUIDField(default=uuid.uuid4, help_text="Client event id; makes re-sends harmless.")
    name = models.CharField(max_length=64)
    visitor_id = models.CharField(max_length=64)
    user_id = models.CharField(max_length=64, blank=True, default="")
    item_id = models.CharField(max_length=128, blank=True, default="")
    session_id = models.CharField(max_length=64, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    client_time = models.DateTimeField(null=True, blank=True, help_text="As the client reported it.")
    occurred_at = models.DateTimeField(help_text="Client time corrected for clock skew.")
    received_at = models.DateTimeField()
    schema_version = models.PositiveSmallIntegerField(default=SCHEMA_VERSION)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.BROWSER)
    # Preprocessing verdicts, decided at append time; the row itself keeps everything.
    is_bot = models.BooleanField(default=False)
    is_repeat = models.BooleanField(default=False, help_text="Rapid repeat of the visitor's previous event.")

    txid = TransactionIdField(db_default=models.Func(function="pg_current_xact_id"), editable=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["visitor_id", "occurred_at"], name="tracking_ev_visitor_time"),
            models.Index(fields=["item_id", "occurred_at"], name="tracking_ev_item_time"),
            models.Index(fields=["user_id", "occurred_at"], name="tracking_ev_user_time"),
            models.Index(fields=["occurred_at"], name="tracking_ev_time"),
            models.Index(fields=["txid", "id"], name="tracking_ev_txid"),
            # A visitor's events in log order: a projection reads a visitor's last N events
            # before its cursor as a backward scan of N entries, not the whole history.
            models.Index(fields=["visitor_id", "txid", "id"], name="tracking_ev_visitor_log"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.item_id or ''} by {self.visitor_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("The event log is append-only: events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        _refuse_delete()
        return super().delete(*args, **kwargs)


class EventKey(models.Model):
    """The client event ids appended so far: what makes ingest exactly-once by event id.

    The log is partitioned by time, and PostgreSQL enforces uniqueness on a partitioned table
    only for keys that include the partition key, so a re-send received a month later would
    land in another partition unnoticed. Appends insert here first (one statement with the
    event, ``ON CONFLICT DO NOTHING``) and only the ids that were new become events. A key
    outlives its event's forget (a retried send of a forgotten event stays a duplicate) and
    goes with retention, by ``received_at``.
    """

    uuid = models.UUIDField(primary_key=True)
    received_at = models.DateTimeField()

    class Meta:
        # BRIN: keys arrive in received_at order, so a block-range index serves retention's
        # delete by time at almost no cost per append (a B-tree here was one more index
        # insert on the path of every event).
        indexes = [BrinIndex(fields=["received_at"], name="tracking_evkey_time")]

    def __str__(self) -> str:
        return str(self.uuid)

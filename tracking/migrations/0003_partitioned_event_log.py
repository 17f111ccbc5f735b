"""The event log becomes a table partitioned by range of ``received_at`` (tracking.partitions).

The rows are copied into the partitioned table in this migration's transaction (the log is
locked meanwhile: on a large live log, run it in a maintenance window). Client event ids move
to ``tracking_eventkey``, which keeps ingest exactly-once across partitions.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.postgres.indexes import BrinIndex
from django.db import migrations, models

COLUMNS = ("id, uuid, name, visitor_id, user_id, item_id, session_id, properties, client_time, occurred_at, "
           "received_at, schema_version, source, is_bot, is_repeat, txid")

INDEXES = [
    ("tracking_ev_visitor_time", "visitor_id, occurred_at"),
    ("tracking_ev_item_time", "item_id, occurred_at"),
    ("tracking_ev_user_time", "user_id, occurred_at"),
    ("tracking_ev_time", "occurred_at"),
    ("tracking_ev_txid", "txid, id"),
    ("tracking_ev_visitor_log", "visitor_id, txid, id"),
]

FORWARD = [
    "ALTER TABLE tracking_event RENAME TO tracking_event_unpartitioned",
    # Columns, defaults, NOT NULLs and checks as they were; the id's identity becomes a
    # sequence of its own (identity columns on partitioned tables need PostgreSQL 17).
    "CREATE TABLE tracking_event (LIKE tracking_event_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
    "PARTITION BY RANGE (received_at)",
    "CREATE SEQUENCE tracking_event_log_id_seq AS bigint OWNED BY tracking_event.id",
    "ALTER TABLE tracking_event ALTER COLUMN id SET DEFAULT nextval('tracking_event_log_id_seq')",
    "SELECT setval('tracking_event_log_id_seq', coalesce((SELECT max(id) FROM tracking_event_unpartitioned), 0) + 1, false)",
    "ALTER TABLE tracking_event ADD PRIMARY KEY (id, received_at)",
    "CREATE TABLE tracking_event_default PARTITION OF tracking_event DEFAULT",
]

def copy_rows(apps, schema_editor):
    """Partitions for the rows there are and for the months ahead, then the rows and their keys."""
    from tracking import partitions

    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT min(received_at), max(received_at) FROM tracking_event_unpartitioned")
        low, high = cur.fetchone()
    if low is not None:
        partitions.ensure_range(low, high + timedelta(microseconds=1))
    partitions.ensure_partitions()
    with schema_editor.connection.cursor() as cur:
        cur.execute(f"INSERT INTO tracking_event ({COLUMNS}) SELECT {COLUMNS} FROM tracking_event_unpartitioned")
        cur.execute("INSERT INTO tracking_eventkey (uuid, received_at) "
                    "SELECT uuid, received_at FROM tracking_event_unpartitioned")
        cur.execute("DROP TABLE tracking_event_unpartitioned")
        for name, columns in INDEXES:
            cur.execute(f"CREATE INDEX {name} ON tracking_event ({columns})")


def copy_back(apps, schema_editor):
    with schema_editor.connection.cursor() as cur:
        cur.execute("CREATE TABLE tracking_event_unpartitioned (LIKE tracking_event INCLUDING DEFAULTS "
                    "INCLUDING CONSTRAINTS)")
        cur.execute("INSERT INTO tracking_event_unpartitioned SELECT * FROM tracking_event")


BACKWARD_AFTER = [
    "DROP TABLE tracking_event",
    "ALTER TABLE tracking_event_unpartitioned RENAME TO tracking_event",
    "ALTER TABLE tracking_event ADD PRIMARY KEY (id)",
    "ALTER TABLE tracking_event ADD CONSTRAINT tracking_event_uuid_key UNIQUE (uuid)",
    "CREATE SEQUENCE tracking_event_id_seq AS bigint OWNED BY tracking_event.id",
    "ALTER TABLE tracking_event ALTER COLUMN id SET DEFAULT nextval('tracking_event_id_seq')",
    "SELECT setval('tracking_event_id_seq', coalesce((SELECT max(id) FROM tracking_event), 0) + 1, false)",
] + [f"CREATE INDEX {name} ON tracking_event ({columns})" for name, columns in INDEXES]


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0002_event_visitor_log_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventKey",
            fields=[
                ("uuid", models.UUIDField(primary_key=True, serialize=False)),
                ("received_at", models.DateTimeField()),
            ],
            options={
                "indexes": [BrinIndex(fields=["received_at"], name="tracking_evkey_time")],
            },
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="uuid",
                    field=models.UUIDField(default=uuid.uuid4,
                                           help_text="Client event id; makes re-sends harmless."),
                ),
            ],
            database_operations=[
                migrations.RunSQL(FORWARD, reverse_sql=BACKWARD_AFTER),
                migrations.RunPython(copy_rows, reverse_code=copy_back),
            ],
        ),
    ]

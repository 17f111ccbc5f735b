"""Projections of the event log (all rebuildable by replay) and staff-tuned configuration."""
from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import VectorField


class Item(models.Model):
    """The catalogue projection: what can be recommended, with its text embedding.

    The vector column has no fixed dimension so the encoder backend can change; the
    HNSW index is built per dimension on a cast expression (see ``services.vectors``).
    """

    item_id = models.CharField(max_length=128, unique=True, help_text="The id events carry.")
    title = models.CharField(max_length=512, blank=True, default="")
    text = models.TextField(blank=True, default="", help_text="Extra text for the encoder.")
    categories = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    url = models.CharField(max_length=512, blank=True, default="")
    available = models.BooleanField(default=True)
    source = models.CharField(max_length=64, blank=True, default="", help_text="Adapter label, or 'events'.")
    embedding = VectorField(null=True, blank=True)
    embedding_model = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["embedding_model"], name="recsys_item_model")]

    def __str__(self) -> str:
        return self.title or self.item_id

    def embedding_text(self) -> str:
        parts = [self.title, self.text, ", ".join(self.categories)]
        return ". ".join(p for p in parts if p)


class VisitorProfile(models.Model):
    """A visitor's interest state, maintained incrementally from their events."""

    visitor_id = models.CharField(max_length=64, unique=True)
    user_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # Decayed weighted sums of item/query embeddings (not normalised: the norm is the evidence).
    long_term = VectorField(null=True, blank=True)
    short_term = VectorField(null=True, blank=True)
    # Up to K interest centroids: [{"vector": [...], "weight": w, "label": str, "updated": ts}]
    interests = models.JSONField(default=list, blank=True)
    event_count = models.PositiveIntegerField(default=0)
    rate_per_hour = models.FloatField(default=0.0, help_text="Poisson activity rate (events/hour), decayed.")
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.BigIntegerField(default=0)
    summary = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.visitor_id


class ProjectionCursor(models.Model):
    """The last event id a projection applied (eventsourcing's Tracking record)."""

    name = models.CharField(max_length=64, primary_key=True)
    txid = models.BigIntegerField(default=0, help_text="Transaction id of the last applied event.")
    position = models.BigIntegerField(default=0, help_text="Event id of the last applied event.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}@{self.position}"


class StrategyConfig(models.Model):
    """Staff tuning of one strategy, merged over its DEFAULT_CONFIG (Saleor's plugin config)."""

    strategy_id = models.CharField(max_length=64, primary_key=True)
    config = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.strategy_id


class SlotConfig(models.Model):
    """A published version of a slot's configuration; the newest active one is live.

    Rows are never edited: publishing adds a version, rolling back re-activates an old one.
    A slot without rows uses ``LIVEREC["SLOTS"]``.
    """

    slot = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    config = models.JSONField(help_text="Same shape as an entry of LIVEREC['SLOTS'].")
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["slot", "version"], name="recsys_slot_version")]
        ordering = ["slot", "-version"]

    def __str__(self) -> str:
        return f"{self.slot} v{self.version}"


class TrainedModel(models.Model):
    """A versioned blob of trained weights (e.g. the sequential model), written by a batch task.

    Rows are never edited: each training run adds a version; workers load the newest one.
    Keeping weights in PostgreSQL means every worker sees the same model with no shared disk.
    """

    name = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    blob = models.BinaryField()
    metrics = models.JSONField(default=dict, blank=True, help_text="Training data size, loss, timings.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="recsys_trained_model_version")]
        ordering = ["name", "-version"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

"""Projections of the event log (all rebuildable by replay) and staff-tuned configuration."""
from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import VectorField

from .adapters import text_fields_for
from .itemtext import build


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
        """What the encoder embeds: the adapter's ``text_fields``, dates left out (``recsys.itemtext``)."""
        return build(self, text_fields_for(self.source))


class VisitorProfile(models.Model):
    """A visitor's interest state, maintained incrementally from their events."""

    visitor_id = models.CharField(max_length=64, unique=True)
    user_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # Decayed weighted sums of item/query embeddings (not normalised: the norm is the evidence).
    long_term = VectorField(null=True, blank=True)
    short_term = VectorField(null=True, blank=True)
    # Up to K interests: [{"weight": w, "label": str}], their centroids in ``interest_vectors``.
    interests = models.JSONField(default=list, blank=True)
    # The interests' centroids (decayed weighted sums, like long_term), in ``interests`` order:
    # float32 little-endian, one row of the encoder's dimension each. Binary, not JSON
    # floats: the decimal text cost the fold's reads and writes ~9% of a realtime worker's CPU
    # (decoding, rounding, encoding), and PostgreSQL parsed it into numerics and compressed
    # it on every write (``services.interests.pack_vectors``).
    interest_vectors = models.BinaryField(default=bytes, blank=True, editable=False)
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


class PublishedVersion(models.Model):
    """One published version of a tuned configuration (``recsys.services.publishing``).

    Rows are never edited: publishing adds a version, rolling back publishes an old version's
    config again as a new one, and the newest active row is live.
    """

    version = models.PositiveIntegerField()
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        abstract = True


class SlotConfig(PublishedVersion):
    """A published version of a slot's configuration. A slot without rows uses
    ``LIVEREC["SLOTS"]``."""

    slot = models.CharField(max_length=64)
    config = models.JSONField(help_text="Same shape as an entry of LIVEREC['SLOTS'].")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["slot", "version"], name="recsys_slot_version")]
        ordering = ["slot", "-version"]

    def __str__(self) -> str:
        return f"{self.slot} v{self.version}"


class ItemAssociation(models.Model):
    """Item-item association projection (collaborative/co-occurrence), one row per direction.

    ``weight`` is the time-decayed weight as of ``updated``; ``log_key`` is its forward-decay
    key (see ``recsys.association_model``): ordering by it orders by decayed weight at any
    time, so an item's top neighbours are an index scan.
    """

    # The pair is the key, with no surrogate id: every fold rewrites log_key, an indexed column,
    # so no update is HOT and every index gets an entry per pair written. Without the id's
    # index the fold's upsert takes ~30% less time (see migration 0006).
    pk = models.CompositePrimaryKey("item_a", "item_b")
    item_a = models.CharField(max_length=128)
    item_b = models.CharField(max_length=128)
    weight = models.FloatField()
    log_key = models.FloatField()
    updated = models.DateTimeField(help_text="Event time of the latest observation.")

    class Meta:
        indexes = [models.Index("item_a", models.F("log_key").desc(), name="recsys_assoc_top")]

    def __str__(self) -> str:
        return f"{self.item_a} -> {self.item_b} ({self.weight:.3g})"


class ItemPopularity(models.Model):
    """Time-decayed engagement per item (popular/trending), folded with the associations.

    ``log_key`` is a forward-decay key (``recsys.association_model``) at the half-life of
    ``LIVEREC["TRENDING"]``: ordering by it orders items by decayed popularity at any time,
    so the trending list is an index scan instead of an aggregate over the log window.
    """

    item_id = models.CharField(max_length=128, primary_key=True)
    log_key = models.FloatField()
    updated = models.DateTimeField(help_text="Event time of the latest engagement.")

    class Meta:
        indexes = [models.Index(models.F("log_key").desc(), name="recsys_popularity_top")]

    def __str__(self) -> str:
        return f"{self.item_id} ({self.log_key:.3g})"


class RecommendationLog(models.Model):
    """One served list: which items, in which order, from which strategies.

    Written when a list is rendered in a page, pushed, resent on resync or polled, keyed by
    the recommendation id the widget reports with impressions and clicks, so click-through
    can be attributed to slots and strategies. Not a projection of the event log: it records
    what the engine answered at the time, which no replay can reproduce.
    """

    rec_id = models.CharField(max_length=32, primary_key=True)
    visitor_id = models.CharField(max_length=64, db_index=True)
    slot = models.CharField(max_length=64)
    channel = models.CharField(max_length=16, help_text="page, push, resync, poll or api.")
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    items = ArrayField(models.CharField(max_length=128), default=list, help_text="Item ids in rank order.")
    strategies = models.JSONField(default=dict, help_text="{item_id: [strategy ids that proposed it]}")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["slot", "created_at"], name="recsys_reclog_slot_time")]

    def __str__(self) -> str:
        return f"{self.slot}:{self.rec_id}"


# --- Admin tuning UI: interest settings, experiments, evaluation runs, audit trail ---------------


class InterestConfig(PublishedVersion):
    """A published version of the interest-model settings (event weights, half-lives). Without
    rows ``LIVEREC["EVENT_WEIGHTS"]`` and the half-life settings apply."""

    version = models.PositiveIntegerField(unique=True)
    config = models.JSONField(help_text='{"EVENT_WEIGHTS": {...}, "LONG_TERM_HALF_LIFE_HOURS": h, ...}')

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"interest settings v{self.version}"


class Experiment(models.Model):
    """An A/B test of two or more configurations of one slot.

    ``arms``: ``[{"name": "A", "weight": 50, "version": 3}, {"name": "B", "weight": 50, "config": {...}}]``;
    an arm names a published ``SlotConfig`` version of the slot or carries an inline config.
    Visitors are assigned by a hash of (experiment id, visitor id): stable without storage.
    """

    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        STOPPED = "stopped"

    name = models.CharField(max_length=128, unique=True)
    slot = models.CharField(max_length=64)
    arms = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    winner = models.CharField(max_length=64, blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["slot"], condition=models.Q(status="running"),
                                               name="recsys_one_running_experiment_per_slot")]

    def __str__(self) -> str:
        return self.name


class EvaluationRun(models.Model):
    """One offline evaluation (the ``recsys_evaluate`` command) started from the admin."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    results = models.JSONField(default=dict, blank=True)
    log = models.TextField(blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"evaluation #{self.pk} ({self.status})"


class AuditEntry(models.Model):
    """Who changed what, when, from the admin tools. Append-only.

    Also carries the admin tools' per-action permissions (app-scoped: ``recsys.<codename>``).
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=255, blank=True, default="")
    diff = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"
        permissions = [
            ("publish_slotconfig", "Can publish and roll back slot, strategy and interest settings"),
            ("manage_experiment", "Can create, start, stop and promote experiments"),
            ("run_evaluation", "Can start offline evaluation runs"),
            ("export_visitor", "Can export a visitor's data"),
            ("forget_visitor", "Can forget a visitor (delete their events and profile)"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.user} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("The audit trail is append-only.")
        super().save(*args, **kwargs)


class Dashboard(AuditEntry):
    """The admin dashboard's entry in the recsys section (a page, not data of its own)."""

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "dashboard"


class Keyphrase(models.Model):
    """A phrase mined from the catalogue text, embedded once, to label interests and topics."""

    phrase = models.CharField(max_length=128)
    embedding = VectorField()
    embedding_model = models.CharField(max_length=128)
    doc_freq = models.PositiveIntegerField(default=0, help_text="Items whose text contains the phrase.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["embedding_model", "phrase"], name="recsys_keyphrase_unique")]

    def __str__(self) -> str:
        return self.phrase


class CatalogueTopic(models.Model):
    """A cluster of item vectors (k-means), labelled with keyphrases: the catalogue's topics."""

    number = models.PositiveIntegerField(unique=True)
    label = models.CharField(max_length=255, blank=True, default="")
    keyphrases = models.JSONField(default=list, blank=True)
    centroid = VectorField()
    size = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number}: {self.label}"


class VisitorTopics(models.Model):
    """A visitor's distribution over the catalogue topics (shares summing to 1), for the admin."""

    visitor_id = models.CharField(max_length=64, unique=True)
    distribution = models.JSONField(default=dict, help_text="{topic number: share}")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.visitor_id


class VisitorSequenceState(models.Model):
    """A visitor's sequence-model summary: the next-item model's hidden state after their
    last engaged items, one row of ``d`` floats per ensemble member (a projection of the log
    for one model version, written after each fold and after each training run).

    Requests rank from it without a forward pass; it is used only while it was computed by the
    serving model (``model_id``) from the profile's current fold position (``basis`` equals
    ``VisitorProfile.last_event_id``), so a stale row is never read, only recomputed.
    """

    visitor_id = models.CharField(max_length=64, unique=True)
    model_id = models.BigIntegerField(help_text="The TrainedModel row the state was computed with.")
    basis = models.BigIntegerField(default=0, help_text="The profile's last_event_id it was computed at.")
    # float32 (members, d), C order; empty when none of the visitor's items is known to the model.
    state = models.BinaryField()
    last_item_id = models.CharField(max_length=128, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.visitor_id}@{self.model_id}"


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

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.urls import reverse


class Film(models.Model):
    """A MovieLens-100K film: the demo shop's product."""

    ml_id = models.PositiveIntegerField(unique=True)
    title = models.CharField(max_length=255)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    genres = ArrayField(models.CharField(max_length=32), default=list, blank=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    def get_absolute_url(self) -> str:
        return reverse("catalogue:film", args=[self.ml_id])

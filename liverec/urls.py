"""``path("liverec/", include("liverec.urls"))``: the tracker's ingest, the recommendations
endpoint and the health check. Mount it at ``liverec/``: the tracker and the widget call
``/liverec/...`` unless their ``endpoint``/``ws-url`` attributes say otherwise."""
from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("tracking.urls")),
    path("", include("recsys.urls")),
]

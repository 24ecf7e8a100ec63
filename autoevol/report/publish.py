"""Push a finished run's training set to the Hugging Face Hub as a dataset repository.

What goes up is `output/evolved.parquet`, as `data/train-00000-of-00001.parquet` (the file layout
`datasets.load_dataset` reads as the train split), and a dataset card (`templates/dataset_card.md.j2`)
written from the run's manifest, `summary.json` and `best_method.json`. Nothing else leaves the machine: no base
URL, no local path, no key. The token comes only from `HF_TOKEN`, the endpoint from `HF_ENDPOINT`
(default: the public Hub), and neither is written anywhere; error messages are built from status
codes and have the token replaced should a server echo it back.

A push runs after the outputs are written, so a failed push leaves a finished run: `autoevol push
RUN_DIR ORG/NAME` sends it again.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template

from autoevol.errors import ConfigError, HubPushError, ResumeMismatchError
from autoevol.redact import redact
from autoevol.store.manifest import Manifest

PARQUET_IN_REPO = "data/train-00000-of-00001.parquet"
TOKEN_ENV = "HF_TOKEN"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_push(repo: str) -> str:
    """Everything a push needs that can be checked before a run spends anything; returns the token.

    Checked up front so a paid run does not end in "install huggingface_hub" or "set HF_TOKEN".
    """
    if not _REPO_ID.match(repo):
        raise ConfigError(f"--push-to-hub wants ORG/NAME (a dataset repository id), not {repo!r}")
    _hub()
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"pushing to the Hub needs a write token in the environment variable {TOKEN_ENV}")
    return token


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError("--push-to-hub needs `huggingface_hub`: pip install 'autoevol[hub]'") from None
    return huggingface_hub


def push_run(run_dir: Path, repo: str, *, private: bool = False) -> str:
    """Create (or reuse) the dataset repository `repo` and commit the parquet and the card in one commit.

    Returns the repository's URL. Raises `HubPushError` with one redacted line when the Hub says no.
    """
    token = check_push(repo)
    try:
        status: str | None = Manifest.load(run_dir).status
    except ResumeMismatchError:
        status = None
    if status != "finished":
        raise ConfigError(f"{run_dir} is not a finished run (status {status or 'unknown'}): "
                          f"`autoevol resume {run_dir}` first")
    parquet = run_dir / "output" / "evolved.parquet"
    if not parquet.is_file():
        raise ConfigError(f"{run_dir} has no output/evolved.parquet: finish the run first (`autoevol resume`)")
    card = dataset_card(run_dir)
    hub = _hub()
    # The endpoint is read here rather than left to the library's import-time constant, so a process
    # that set HF_ENDPOINT after importing huggingface_hub (the Python API in a notebook) still honours it.
    api = hub.HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        # None rather than False: without --hub-private the namespace's default visibility applies.
        url = api.create_repo(repo, repo_type="dataset", private=True if private else None, exist_ok=True)
        api.create_commit(
            repo, repo_type="dataset", commit_message="Upload evolved dataset (autoevol)",
            operations=[
                hub.CommitOperationAdd(path_in_repo=PARQUET_IN_REPO, path_or_fileobj=str(parquet)),
                hub.CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")),
            ],
        )
    except Exception as error:  # the library raises HTTP, transport and validation errors of its own kinds
        raise HubPushError(redact(f"push to {repo} failed: {_reason(error)}; the run is finished: "
                                   f"`autoevol push {run_dir} {repo}` tries again", token)) from None
    return str(url)


def _reason(error: BaseException) -> str:
    """A short cause from the status code, not the server's body (which could quote the request)."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        return f"HTTP {status}, the token in {TOKEN_ENV} was refused or cannot write there"
    if status is not None:
        return f"HTTP {status}"
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def dataset_card(run_dir: Path) -> str:
    """The README.md of the pushed dataset: what made it, with which method and models, and its counts."""
    manifest = Manifest.load(run_dir)
    summary = _json(run_dir / "output" / "summary.json")
    best = _json(run_dir / "output" / "best_method.json")
    # The method the rows were written with: the optimised one, else the first one given.
    methods = [method.to_dict() for method in manifest.methods] or ([best] if best else [])
    method = best or (methods[0] if methods else {})
    method_id = method.get("id", "unknown")
    best_lambda = (best.get("lineage") or {}).get("best_lambda")
    rounds = summary.get("rounds") or []
    values = {
        "command": manifest.command, "version": manifest.version,
        "method_id": method_id, "method_name": method.get("name"),
        "others": [m["id"] for m in methods if m.get("id") and m["id"] != method_id],
        "best_lambda": best_lambda if isinstance(best_lambda, int | float) else None,
        "rounds": manifest.evolve.rounds, "mix": summary.get("mix", manifest.evolve.mix),
        "rule_set": manifest.evolve.rule_set,
        # Model names only: a spec's base URL may be a private host and says nothing about the data.
        "models": [(role, spec.label) for role, spec in manifest.roles().resolved().items()],
        "round_rows": [{name: r.get(name) for name in ("round", "inputs", "accepted", "rejected", "failed")}
                       for r in rounds],
        "training_rows": summary.get("training_rows", "?"),
        "rejected_rows": summary.get("rejected_or_failed_rows", "?"),
    }
    return _card_template().render(**values)


#: Characters that mean something to Markdown (or start HTML) inside a line (values never start one).
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()!|<>&~])")


def markdown_text(value: object) -> str:
    """`value` as literal text in running Markdown: one line, every Markdown or HTML character escaped,
    so a method name like `m<b onmouseover=alert(1)>` shows as itself on the Hub (review B22)."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(value).split()))


def code_text(value: object) -> str:
    """`value` inside a `code span`: one line and no backtick (the only way out of a span; HTML inside
    one is shown, not rendered)."""
    return " ".join(str(value).replace("`", "'").split())


def _card_template() -> Template:
    # Markdown, not HTML: no autoescape (the card must keep its exact bytes and final newline); every
    # value from the run goes through `md` or `code` in the template instead.
    env = Environment(loader=PackageLoader("autoevol.report", "templates"), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters |= {"md": markdown_text, "code": code_text}
    return env.get_template("dataset_card.md.j2")

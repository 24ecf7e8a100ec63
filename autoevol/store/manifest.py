"""What a run is, as `RUN/manifest.json` records it: the one typed door to that file.

The file has two halves. `config` is hashed into `config_hash`: the data's identity (its bytes and
how they are read, never where they lie), the semantic part of every model spec, the settings and
the methods. A resume must rebuild exactly these bytes, so `Manifest.config()` is the form every
run directory written since schema 2 holds: changing a key or a value's form there makes every
existing run refuse to resume. `operational` is not hashed and may change between a run and its
resume: the data path, what detection found, the full model specs (concurrency, timeouts) and the
export formats the run writes (absent from manifests older than the field, which resume without).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from autoevol._version import __version__
from autoevol.config import EvolveSettings, OptimizeSettings, config_hash
from autoevol.data.readers import OnBadRow
from autoevol.data.source import DataSource
from autoevol.errors import ResumeMismatchError
from autoevol.llm.spec import ModelSpec, Roles
from autoevol.methods.method import EvolvingMethod, MethodError

SCHEMA_VERSION = 2


@dataclass(frozen=True, slots=True)
class DataRecord:
    """The data a run reads: its identity (hashed) plus where it was and what detection found."""

    path: Path | None
    schema: str
    field: str | None
    id_field: str | None
    on_bad_row: OnBadRow
    limit: int | None
    size: int
    sha256: str
    encoding: str | None = None
    split: str | None = None
    rows_from: int | None = None
    detected: Mapping[str, str | None] | None = None

    @classmethod
    def of(cls, source: DataSource) -> DataRecord:
        """Fingerprint `source` (one hashing pass per file version and process) and look at its first row."""
        found = source.identity()
        return cls(path=source.path, schema=source.schema, field=source.field, id_field=source.id_field,
                   on_bad_row=source.on_bad_row, limit=source.limit, size=found["size"], sha256=found["sha256"],
                   encoding=source.encoding, split=source.split, rows_from=found.get("rows_from"),
                   detected=source.detected())

    def identity(self) -> dict[str, Any]:
        """`DataSource.identity()` as recorded: optional keys only when set, as older runs hashed them."""
        identity = {"schema": self.schema, "field": self.field, "id_field": self.id_field,
                    "on_bad_row": self.on_bad_row, "limit": self.limit, "size": self.size, "sha256": self.sha256}
        optional = {"encoding": self.encoding, "split": self.split, "rows_from": self.rows_from}
        return identity | {name: value for name, value in optional.items() if value is not None}

    def source(self) -> DataSource:
        if self.path is None:
            raise ResumeMismatchError("the run's manifest.json does not say where the data file is")
        return DataSource(self.path, schema=self.schema, field=self.field, id_field=self.id_field,
                          on_bad_row=self.on_bad_row, limit=self.limit, encoding=self.encoding, split=self.split)

    @classmethod
    def from_dict(cls, identity: Mapping[str, Any], operational: Mapping[str, Any]) -> DataRecord:
        # Runs made before the path left the identity kept it in the hashed half.
        path = operational.get("path") or identity.get("path")
        return cls(path=Path(path) if path else None, schema=identity["schema"], field=identity["field"],
                   id_field=identity["id_field"], on_bad_row=identity["on_bad_row"], limit=identity["limit"],
                   size=identity["size"], sha256=identity["sha256"], encoding=identity.get("encoding"),
                   split=identity.get("split"), rows_from=identity.get("rows_from"),
                   detected=operational.get("detected"))


@dataclass(frozen=True, slots=True)
class Manifest:
    """One run: the command, its data, models, methods and settings, and how far it got."""

    command: str
    data: DataRecord
    models: Roles
    evolve: EvolveSettings
    optimize: OptimizeSettings | None = None
    #: The evolve command's methods; `optimize` and `run` find theirs.
    methods: tuple[EvolvingMethod, ...] = ()
    #: `--export` formats written beside evolved.jsonl (operational: a resume keeps them).
    exports: tuple[str, ...] = ()
    version: str = __version__
    schema_version: int = SCHEMA_VERSION
    created_at: str = ""
    status: str = "running"
    reason: str | None = None
    #: The hash a loaded manifest was written with: a resume compares against it, not a recomputation.
    recorded_hash: str | None = None

    @classmethod
    def new(cls, command: str, source: DataSource, roles: Roles, evolve: EvolveSettings, *,
            optimize: OptimizeSettings | None = None, methods: tuple[EvolvingMethod, ...] = (),
            exports: tuple[str, ...] = ()) -> Manifest:
        """The manifest of a run about to start (or resume) now, with this autoevol."""
        return cls(command=command, data=DataRecord.of(source), models=roles, evolve=evolve, optimize=optimize,
                   methods=methods, exports=exports,
                   created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def config_hash(self) -> str:
        return self.recorded_hash or config_hash(self.config())

    def config(self) -> dict[str, Any]:
        """The hashed half, key for key as every schema-2 run directory holds it."""
        specs = self.models.resolved()
        config: dict[str, Any] = {"autoevol": self.version, "data": self.data.identity(),
                                  "models": {role: spec.semantic() for role, spec in specs.items()}}
        if self.command == "evolve":
            config["methods"] = [method.to_dict() for method in self.methods]
        elif self.optimize is not None:
            config["optimize"] = self.optimize.hashed()
        return config | {"evolve": self.evolve.hashed()}

    def operational(self) -> dict[str, Any]:
        """The unhashed half: free to change between a run and its resume."""
        path = str(self.data.path.resolve()) if self.data.path is not None else None
        return {"data": {"path": path, "detected": dict(self.data.detected or {})},
                "models": {role: spec.model_dump(mode="json") for role, spec in self.models.resolved().items()},
                "exports": list(self.exports)}

    def source(self) -> DataSource:
        """The run's data, read from the recorded path with the recorded options."""
        return self.data.source()

    def roles(self) -> Roles:
        return self.models

    def optimize_settings(self) -> OptimizeSettings:
        """The optimisation of an `optimize` or `run` command."""
        if self.optimize is None:
            raise ResumeMismatchError(f"an `autoevol {self.command}` run records no optimisation settings")
        return self.optimize

    def with_status(self, status: str, reason: str | None = None) -> Manifest:
        """A new status; the reason of an earlier stop stays until another is given."""
        return replace(self, status=status, reason=reason if reason is not None else self.reason)

    def to_json(self) -> str:
        found: dict[str, Any] = {"schema_version": self.schema_version, "command": self.command,
                                 "config_hash": self.config_hash, "config": self.config(),
                                 "operational": self.operational(), "created_at": self.created_at,
                                 "status": self.status}
        if self.reason is not None:
            found["reason"] = self.reason
        return json.dumps(found, indent=2, ensure_ascii=False, default=str) + "\n"

    @classmethod
    def load(cls, run_dir: Path) -> Manifest:
        """Read `run_dir/manifest.json` (ResumeMismatchError when missing, damaged or of another schema)."""
        path = run_dir / "manifest.json"
        if not path.exists():
            raise ResumeMismatchError(f"{run_dir} is not an autoevol run directory (no manifest.json)")
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            found = None
        if not isinstance(found, dict):
            raise _damaged(path, "not a JSON object")
        if found.get("schema_version") != SCHEMA_VERSION:
            raise ResumeMismatchError(
                f"{run_dir} was written by run schema {found.get('schema_version')}, this autoevol uses "
                f"{SCHEMA_VERSION}; start a new run directory"
            )
        try:
            return cls._from_dict(found)
        except (KeyError, TypeError, ValueError, AttributeError, ValidationError, MethodError) as error:
            raise _damaged(path, f"{type(error).__name__}: {error}") from None

    @classmethod
    def _from_dict(cls, found: Mapping[str, Any]) -> Manifest:
        config, operational = found["config"], found.get("operational") or {}
        specs = {role: ModelSpec(**spec) for role, spec in operational["models"].items()}
        optimize = config.get("optimize")
        return cls(
            command=found["command"], data=DataRecord.from_dict(config["data"], operational.get("data") or {}),
            models=Roles.from_resolved(specs), evolve=EvolveSettings(**config["evolve"]),
            optimize=OptimizeSettings(**optimize) if optimize is not None else None,
            methods=tuple(EvolvingMethod.from_dict(m) for m in config.get("methods", ())),
            exports=tuple(operational.get("exports", ())), version=config["autoevol"],
            schema_version=found["schema_version"], created_at=found.get("created_at", ""),
            status=found.get("status", "running"), reason=found.get("reason"),
            recorded_hash=found.get("config_hash"),
        )


def _damaged(path: Path, why: str) -> ResumeMismatchError:
    return ResumeMismatchError(
        f"{path} is damaged ({why}); the run cannot be resumed: "
        "use a new --out, or --overwrite to start this one afresh"
    )

"""Finding runs: `panel runs` rows, and `latest` or a unique prefix wherever a run id goes."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from panel.errors import RunStoreError
from panel.runformat import RunManifest
from panel.store.runs import RunStore, list_runs, validate_run_id


class RunRow(BaseModel):
    """One line of `panel runs`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    created_at: str
    updated_at: str
    model: str
    synthetic: bool
    tools: int
    personas: int
    pairs_total: int
    results: int
    samples: int = 1  # draws per pair and model (--samples)
    models: int = 1  # a jury's models
    draws_total: int = 0  # lines a complete run holds: pairs × samples × models
    status: str
    cost_usd: float
    cost_known: bool


def _count_results(runs_dir: Path, run_id: str) -> int:
    try:
        return sum(1 for _ in RunStore(runs_dir, run_id).iter_results())
    except (RunStoreError, OSError):
        return 0


def run_rows(runs_dir: Path, limit: int | None = None) -> list[RunRow]:
    """Every readable run, newest first (a run still being written shows as it is now)."""
    manifests = list_runs(runs_dir)[:limit] if limit else list_runs(runs_dir)
    return [_row(runs_dir, m) for m in manifests]


def _row(runs_dir: Path, m: RunManifest) -> RunRow:
    return RunRow(
        run_id=m.run_id,
        created_at=m.created_at,
        updated_at=m.updated_at,
        model=m.model,
        synthetic=m.synthetic,
        tools=len(m.inputs.tools),
        personas=len(m.inputs.personas),
        pairs_total=m.pairs_total,
        samples=m.samples,
        models=len(m.models),
        draws_total=m.draws_total,
        results=_count_results(runs_dir, m.run_id),
        status=m.status,
        cost_usd=m.cost.usd,
        cost_known=m.cost.known,
    )


def resolve_run_id(runs_dir: Path, ref: str) -> str:
    """`latest`, an exact run id, or a unique prefix of one -> the run id."""
    runs_dir = Path(runs_dir)
    if ref == "latest":
        runs = list_runs(runs_dir)
        if not runs:
            raise RunStoreError(f"no runs in {runs_dir} yet; start one with `panel run TOOL_FILE`")
        return runs[0].run_id
    validate_run_id(ref)
    if (runs_dir / ref).is_dir():
        return ref
    try:
        names = [e.name for e in os.scandir(runs_dir) if e.is_dir(follow_symlinks=False)]
    except OSError:
        names = []
    matches = sorted(n for n in names if n.startswith(ref) and not n.startswith("."))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunStoreError(f"no run {ref} in {runs_dir}; list them with `panel runs`")
    shown = ", ".join(matches[:5]) + (" …" if len(matches) > 5 else "")
    raise RunStoreError(f"run id prefix {ref} is ambiguous in {runs_dir}: {shown}")


__all__ = ["RunRow", "resolve_run_id", "run_rows"]

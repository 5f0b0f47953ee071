"""Resume defined by the manifest: a resumed run is the same run, or it is refused.

`resume_arguments` reads what a run was asked (tool files, personas, model, the settings that
reach a request) from its `run.json`, so `panel run --resume ID` needs no arguments.
`check_same_run` compares what a resume would ask against the manifest, input by input, and
refuses (the run untouched) if anything differs: a tool left out or added, an edited tool
file, persona or template, another model, seed or setting. Mixing inputs inside one run
would make its verdicts, its records and every later diff lie about where they came from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from panel.errors import RunStoreError
from panel.run.inputcopy import SentInputs, copy_files, keep_copy
from panel.runformat import Inputs, RunManifest
from panel.store.runinputs import INPUTS_DIR
from panel.store.runs import RunStore

# The settings a resume takes from the manifest when the command line does not give them.
RESUMED_SETTINGS = (
    "max_tokens",
    "thinking",
    "cache_ttl",
    "emulator_seed",
    "emulator_behaviour",
    "emulator_flips",
    "result_cache",
)
Setting = str | int | float | bool | None
T = TypeVar("T")


@dataclass(frozen=True)
class ResumeArguments:
    """What the run was asked, as `panel run` options."""

    run_id: str
    tool_files: list[Path]
    personas: list[str]
    model: str
    settings: dict[str, Setting]
    samples: int = 1
    jury: tuple[str, ...] = ()  # the jury's models; `model` then names the jury


def resume_arguments(manifest: RunManifest) -> ResumeArguments:
    return ResumeArguments(
        run_id=manifest.run_id,
        tool_files=[Path(entry.path) for entry in manifest.inputs.tools.values()],
        personas=list(manifest.inputs.personas),
        model=manifest.model,
        settings={k: manifest.settings[k] for k in RESUMED_SETTINGS if k in manifest.settings},
        samples=manifest.samples,
        jury=tuple(manifest.jury),
    )


def _names(items: list[str]) -> str:
    return ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def same_run_problems(
    before: RunManifest,
    model: str,
    inputs: Inputs,
    settings: Mapping[str, Setting],
    *,
    samples: int | None = None,
    jury: Sequence[str] | None = None,
) -> list[str]:
    """Every way a resume asking `inputs` would differ from the run `before` (empty: same)."""
    out: list[str] = []
    if jury is not None and list(jury) != before.jury:
        out.append(
            f"the jury {', '.join(jury)}, but the run's is {', '.join(before.models)} "
            "(resume it with no --jury or --model)"
        )
    if samples is not None and samples != before.samples:
        out.append(
            f"--samples {samples}, but the run draws {before.samples} per pair (resume it with "
            f"--samples {before.samples}, or without --samples)"
        )
    if before.model != model:
        out.append(
            f"model {model}, but the run used {before.model} (resume it with --model "
            f"{before.model}, or with no --model)"
        )
    old, new = before.inputs, inputs
    left_out = sorted(set(old.tools) - set(new.tools))
    if left_out:
        out.append(f"{len(left_out)} of its {len(old.tools)} tools not given ({_names(left_out)})")
    extra = sorted(set(new.tools) - set(old.tools))
    if extra:
        out.append(f"tools the run does not have ({_names(extra)})")
    for slug in sorted(set(old.tools) & set(new.tools)):
        if old.tools[slug].digest != new.tools[slug].digest:
            out.append(f"tool file {new.tools[slug].path} changed since the run")
    if set(old.personas) != set(new.personas):
        out.append(
            f"personas {','.join(sorted(new.personas))}, but the run asked "
            f"{','.join(sorted(old.personas))}"
        )
    for pid in sorted(set(old.personas) & set(new.personas)):
        if old.personas[pid].digest != new.personas[pid].digest:
            out.append(f"persona file {new.personas[pid].path} changed since the run")
    for name in sorted(set(old.templates) | set(new.templates)):
        if old.templates.get(name) != new.templates.get(name):
            out.append(f"template prompts/{name} changed since the run")
    if old.verdict_schema != new.verdict_schema:
        out.append("the verdict schema changed (another panel version)")
    for key in sorted(settings):
        if key in ("model", "provider"):
            continue  # said above
        if before.settings.get(key) != settings[key]:
            was = before.settings.get(key)
            out.append(f"setting {key}={settings[key]!r}, but the run used {was!r}")
    return out


def check_same_run(
    before: RunManifest,
    model: str,
    inputs: Inputs,
    settings: Mapping[str, Setting],
    *,
    samples: int | None = None,
    jury: Sequence[str] | None = None,
) -> None:
    """Refuse a resume that would not be the same run (RunStoreError, the run untouched)."""
    problems = same_run_problems(before, model, inputs, settings, samples=samples, jury=jury)
    if problems:
        raise RunStoreError(
            f"cannot resume run {before.run_id} as the same run: {'; '.join(problems)}. "
            f"The run is unchanged: `panel run --resume {before.run_id}` (a batch: `panel batch "
            f"MANIFEST --resume {before.run_id}`) with no other arguments finishes it as it was "
            "asked, or start a new run without --resume"
        )


def open_run_store(
    runs_dir: Path,
    resume: str | None,
    *,
    check: Callable[[RunManifest], None],
    fresh: Callable[[], RunManifest],
    sent: SentInputs,
    retry_failed: bool = False,
) -> RunStore:
    """The run's store, locked, with its copy of what it sends (panel.run.inputcopy):
    `resume`d (after `check`, which raises to refuse; with `retry_failed` its failed draws are
    taken out to be asked again), else created."""
    if not resume:
        taken = copy_files(*sent)  # read before the run exists: a changed file stops it
        return keep_copy(RunStore.create(runs_dir, fresh()), taken)
    store = RunStore.open(runs_dir, resume, write=True)
    try:  # the same run, or refused with the run untouched
        check(store.manifest())
        if retry_failed:
            failed = {r.draw for r in store.iter_results() if r.status == "failed"}
            failed -= {r.draw for r in store.iter_results() if r.status != "failed"}
            store.drop_results(failed)
        if not (store.path / INPUTS_DIR).exists():  # a run made before copies: add it now
            keep_copy(store, copy_files(*sent))
    except BaseException:
        store.release()
        raise
    return store


async def run_in(store: RunStore, body: Callable[[RunStore], Awaitable[T]]) -> T:
    """Run `body` on the store, leave it "stopped" if interrupted, and always release it."""
    try:
        return await body(store)
    except (asyncio.CancelledError, KeyboardInterrupt):
        # Ctrl-C or SIGTERM: never leave "running" behind; what is recorded stays.
        mark_stopped(store, "interrupted (SIGINT/SIGTERM)")
        raise
    finally:
        store.release()


def mark_stopped(store: RunStore, why: str) -> None:
    """Leave the run "stopped" (resumable), not "running", when it is interrupted."""
    try:
        manifest = store.manifest()
        if manifest.status == "running":
            store.update_manifest(status="stopped", notes=[*manifest.notes, f"stopped: {why}"])
    except (RunStoreError, OSError):
        pass  # the run store is the record; a resume still finds what was recorded


__all__ = [
    "RESUMED_SETTINGS",
    "ResumeArguments",
    "check_same_run",
    "mark_stopped",
    "open_run_store",
    "resume_arguments",
    "run_in",
    "same_run_problems",
]

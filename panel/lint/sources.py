"""`panel lint`'s inputs: a run (its results, tool files and personas), or a results file.

A run's tool descriptions come from the copy the run keeps (`runs/<id>/inputs/tools/
<slug>.yaml`, panel.store.runinputs) when its digest is the manifest's, else from the path its
manifest recorded (`run.json` → inputs.tools[slug].path); personas likewise
(`inputs/personas/<id>.md`, the manifest's path, then the workspace's persona of that id). A
copy edited by hand is never trusted; a recorded path whose digest differs from the
manifest's is still used, with a note: its text is not what the run sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from panel.aggregate import aggregate_pairs, shown_results
from panel.errors import InputError, PanelError
from panel.inputs.personas import Persona, load_personas, parse_persona_file
from panel.inputs.safefiles import UnsafeFileError, read_input_file
from panel.inputs.tools import ToolSpec, load_tools, parse_tool_file
from panel.inputs.workspace import persona_dirs
from panel.lint.report import Rubric, lint_results
from panel.lintformat import LintReport
from panel.runformat import InputDigest, PairResult, RunManifest
from panel.store.runindex import resolve_run_id
from panel.store.runinputs import INPUTS_DIR, copy_name
from panel.store.runs import RunStore

MAX_RESULTS_BYTES = 512 * 1024 * 1024


def _rubric(persona: Persona) -> Rubric:
    return {q.id: q.question for q in persona.rubric}


def _changed(kind: str, key: str, path: Path, recorded: InputDigest, digest: str) -> str | None:
    if digest == recorded.digest:
        return None
    return f"{kind} {key}: {path} changed since the run; checked against its text today"


def run_tools(run_dir: Path, manifest: RunManifest) -> tuple[dict[str, ToolSpec], list[str]]:
    """Each tool's spec by slug: the run's own copy, else the recorded path."""
    tools: dict[str, ToolSpec] = {}
    notes: list[str] = []
    for slug, recorded in manifest.inputs.tools.items():
        copy = run_dir / INPUTS_DIR / copy_name("tools", slug)
        for path in ([copy] if copy.is_file() else []) + [Path(recorded.path)]:
            try:
                spec, digest, _ = parse_tool_file(path)
            except PanelError:
                continue
            if path == copy and digest != recorded.digest:
                continue  # the run's copy, edited since: not what the run sent
            if path != copy and (note := _changed("tool", slug, path, recorded, digest)):
                notes.append(note)
            tools[slug] = spec
            break
    return tools, notes


def run_rubrics(
    run_dir: Path, manifest: RunManifest, cwd: Path | None = None
) -> tuple[dict[str, Rubric], list[str]]:
    """Each persona's rubric by id: the run's copy, the recorded path, then the workspace."""
    rubrics: dict[str, Rubric] = {}
    notes: list[str] = []
    workspace: dict[str, Persona] | None = None
    for pid, recorded in manifest.inputs.personas.items():
        copies = run_dir / INPUTS_DIR / "personas"
        paths = [run_dir / INPUTS_DIR / copy_name("personas", pid), Path(recorded.path)]
        for path in dict.fromkeys(paths):
            if not path.is_file():
                continue
            try:
                persona = parse_persona_file(path)
            except PanelError:
                continue
            if persona.id != pid:
                continue
            if path.is_relative_to(copies) and persona.digest != recorded.digest:
                continue  # the run's copy, edited since: not what the run sent
            if not path.is_relative_to(copies) and (
                note := _changed("persona", pid, path, recorded, persona.digest)
            ):
                notes.append(note)
            rubrics[pid] = _rubric(persona)
            break
        else:
            if workspace is None:
                try:
                    workspace = {p.id: p for p in load_personas(persona_dirs(cwd))}
                except PanelError:
                    workspace = {}
            if pid in workspace:
                persona = workspace[pid]
                note = _changed("persona", pid, Path(persona.path), recorded, persona.digest)
                notes += [note] if note else []
                rubrics[pid] = _rubric(persona)
    return rubrics, notes


def lint_run(runs_dir: Path, run_ref: str, *, cwd: Path | None = None) -> LintReport:
    """Recompute every finding of a run (`latest`, an id or a unique prefix). Read-only."""
    run_id = resolve_run_id(runs_dir, run_ref)
    store = RunStore.open(runs_dir, run_id)
    manifest = store.manifest()
    results = list(store.results().values())  # with samples or a jury: each pair's shown draw
    tools, tool_notes = run_tools(store.path, manifest)
    rubrics, persona_notes = run_rubrics(store.path, manifest, cwd)
    return lint_results(
        results,
        tools,
        rubrics,
        run_id=run_id,
        notes=[*store.warnings, *tool_notes, *persona_notes],
    )


def read_results_file(path: Path) -> list[PairResult]:
    """A results file in the documented result format (one PairResult JSON per line)."""
    try:
        data = read_input_file(path, MAX_RESULTS_BYTES, roots=[Path.cwd()])
    except UnsafeFileError as exc:
        raise InputError(f"{path}: not read: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    if len(data) > MAX_RESULTS_BYTES:
        raise InputError(f"{path}: larger than {MAX_RESULTS_BYTES} bytes")
    results: list[PairResult] = []
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            results.append(PairResult.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "line"
            raise InputError(
                f"{path}:{n}: not a result line (schemas/pair-result.schema.json): "
                f"{loc}: {first['msg']}"
            ) from None
    return results


def lint_file(
    results_path: Path, tool_files: Sequence[Path], *, cwd: Path | None = None
) -> LintReport:
    """Lint verdicts from elsewhere: a results file, the tool files they review, and the
    workspace's personas. A result finds its tool by name, else by slug."""
    # Draws of one pair (samples, a jury's models): the one a page would quote is checked.
    results = list(shown_results(aggregate_pairs(read_results_file(results_path))).values())
    loaded = load_tools(tool_files)
    if loaded.errors:
        raise loaded.errors[0]
    by_slug = {t.slug: t.spec for t in loaded.tools}
    by_name = {t.spec.name.strip().casefold(): t.spec for t in loaded.tools}
    tools: dict[str, ToolSpec] = {}
    for r in results:
        spec = by_name.get(r.tool.strip().casefold()) or by_slug.get(r.tool_slug)
        if spec is not None:
            tools[r.tool_slug] = spec
    personas = load_personas(persona_dirs(cwd))
    return lint_results(results, tools, {p.id: _rubric(p) for p in personas})


__all__ = ["lint_file", "lint_run", "read_results_file", "run_rubrics", "run_tools"]

"""The run's copy of its inputs: what goes into it, and what a resume takes back out of it.

At run creation `copy_files` reads back the bytes of every tool file, persona file and template
the run loaded (each must still hash to the digest the run records) and
`panel.store.runinputs.write_input_copy` writes them into `runs/<id>/inputs/`. A resume takes
from the copy whatever the workspace no longer has (a moved tool file, a custom persona of
another folder) and keeps the workspace's own files otherwise; `check_same_run` still
refuses any workspace file that differs from what the run was asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from panel.digests import digest
from panel.errors import ConfigError, InputError, RunStoreError
from panel.inputs.personas import MAX_PERSONA_BYTES, Persona, parse_persona_file
from panel.inputs.prompts import PromptSet
from panel.inputs.safefiles import UnsafeFileError, read_input_file
from panel.inputs.tools import LoadedTool, parse_tool_file
from panel.inputs.yamlsafe import MAX_YAML_BYTES
from panel.runformat import RunManifest
from panel.store.runinputs import (
    InputCopy,
    InputFile,
    Kind,
    read_input_copy,
    write_input_copy,
)
from panel.store.runs import RunStore

SentInputs = tuple[Sequence[LoadedTool], Sequence[Persona], PromptSet]  # what a run sends


def _read(path: str, cap: int) -> bytes | None:
    if not path:
        return None
    try:
        return read_input_file(Path(path), cap, roots=[Path.cwd()])
    except (OSError, UnsafeFileError):
        return None  # an in-memory input (a library caller's double) has no file to copy


def copy_files(
    tools: Sequence[LoadedTool], personas: Sequence[Persona], prompts: PromptSet
) -> tuple[list[InputFile], list[str]]:
    """(files to copy, inputs that have no file); raises if a file changed since it was read."""
    files: list[InputFile] = []
    skipped: list[str] = []
    wanted: list[tuple[Kind, str, str, str, int]] = [
        *(("tools", t.slug, t.path, t.digest, MAX_YAML_BYTES) for t in tools),
        *(("personas", p.id, p.path, p.digest, MAX_PERSONA_BYTES) for p in personas),
    ]
    for kind, key, path, want, cap in wanted:
        data = _read(path, cap)
        if data is None:
            skipped.append(f"{kind}/{key}")
            continue
        if digest(data) != want:
            raise ConfigError(f"{path} changed while the run started; start the run again")
        files.append(InputFile(kind, key, data))
    for name, source in prompts.template_sources().items():
        files.append(InputFile("prompts", name, source.encode("utf-8")))
    return files, skipped


def keep_copy(store: RunStore, taken: tuple[list[InputFile], list[str]]) -> RunStore:
    """Write the run's copy (runs/<id>/inputs/); note inputs that had no file to copy."""
    files, skipped = taken
    try:
        write_input_copy(store.path, store.manifest().inputs, files)
    except (RunStoreError, OSError) as exc:
        store.release()
        raise RunStoreError(f"cannot keep a copy of the run's inputs: {exc}") from None
    if skipped:  # in-memory inputs (a library caller's doubles) have no file to copy
        notes = [*store.manifest().notes, f"inputs not copied (no file): {', '.join(skipped)}"]
        store.update_manifest(notes=notes)
    return store


def run_copy(store_path: Path, manifest: RunManifest) -> InputCopy:
    """The run's copy as it stands (empty for a run made before copies existed)."""
    return read_input_copy(store_path, manifest.inputs)


def resume_tools(store_path: Path, manifest: RunManifest) -> list[LoadedTool]:
    """The run's tools with their own slugs: the workspace file if it is there, else the copy.

    A workspace file that differs from the run's is loaded as it is now, so `check_same_run`
    refuses it by name; a file that is gone comes from the run's copy.
    """
    copy = run_copy(store_path, manifest)
    out: list[LoadedTool] = []
    for slug, entry in manifest.inputs.tools.items():
        given = Path(entry.path)
        source = given if given.is_file() else copy.path("tools", slug)
        if source is None:
            raise ConfigError(
                f"tool file {entry.path} is gone and run {manifest.run_id} has no copy of it "
                "(a run made before copies were kept): give the tool files again"
            )
        spec, digest, warnings = parse_tool_file(source)
        out.append(
            LoadedTool(spec=spec, slug=slug, path=entry.path, digest=digest, warnings=warnings)
        )
    return out


def resume_personas(
    found: Sequence[Persona], wanted: Sequence[str], store_path: Path, manifest: RunManifest
) -> list[Persona]:
    """`found` plus each persona the run asked that the workspace no longer has (from the copy)."""
    known = {p.id for p in found}
    copy = run_copy(store_path, manifest)
    extra: list[Persona] = []
    for pid in wanted:
        path = copy.path("personas", pid)
        if pid in known or path is None:
            continue
        try:
            extra.append(parse_persona_file(path))
        except InputError:
            continue  # select_personas names it as unknown
    return [*found, *extra]


__all__ = ["SentInputs", "copy_files", "keep_copy", "resume_personas", "resume_tools", "run_copy"]

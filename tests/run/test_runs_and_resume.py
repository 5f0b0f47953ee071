"""Runs you can find and finish: `panel runs`, `latest`, prefixes, resume from the manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_inprocess import cli_joined as cli

from panel.emulator.runner import EmulatorHandle
from panel.store.runs import RunStore

TOOL = """name: {name}
category: Developer Tools
tagline: {name} in one line
pricing: Free
description: |
  {name} is a developer tool that indexes a repository and answers questions about it.
"""


def write_tools(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name.lower()}.yaml"
        path.write_text(TOOL.format(name=name))
        paths.append(path)
    return paths


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PANEL_EMULATOR_URL", emulator.base_url)
    write_tools(tmp_path / "tools", "Alpha", "Beta", "Gamma")
    return tmp_path


def _run_ids(runs: Path) -> list[str]:
    return sorted(p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_runs_lists_newest_first_and_latest_and_prefixes_resolve(workspace: Path) -> None:
    code, out = cli("run", "tools", "-p", "builder,skeptic", "--seed", "3")
    assert code == 0, out
    first = _run_ids(workspace / "runs")[0]
    assert f"run {first} started" in out  # the id is printed when the run starts
    code, out = cli("run", "tools/alpha.yaml", "--seed", "3", "--no-cache")
    assert code == 0, out
    second = next(r for r in _run_ids(workspace / "runs") if r != first)
    code, out = cli("runs", "--json")
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == [second, first]
    assert (rows[1]["tools"], rows[1]["personas"], rows[1]["results"]) == (3, 2, 6)
    assert rows[1]["status"] == "complete" and rows[1]["synthetic"] is True
    code, out = cli("runs")
    lines = out.splitlines()
    assert lines[0].startswith("RUN") and lines[1].startswith(second)
    assert "3×2 6/6" in lines[2] and "complete" in lines[2]
    # `latest` and a unique prefix wherever a run id goes
    code, out = cli("diff", first, "latest", "--json")
    assert code == 0 and json.loads(out)["run_b"] == second
    code, out = cli("diff", first[:-2], second, "--json")
    assert code == 0 and json.loads(out)["run_a"] == first
    code, out = cli("diff", "2", "latest")
    assert code == 2 and "ambiguous" in out and out.count("\n") == 1


def test_resume_needs_no_arguments_and_refuses_contradictions(workspace: Path) -> None:
    code, out = cli("run", "tools", "-p", "builder,skeptic", "--seed", "3", "--budget", "0")
    assert code == 1, out  # the budget stopped it before any pair: all pending
    run_id = _run_ids(workspace / "runs")[0]
    run_dir = workspace / "runs" / run_id
    assert RunStore.open(workspace / "runs", run_id).manifest().status == "paused"
    assert f"finish with: panel run --resume {run_id}" in out
    before = snapshot(run_dir)
    refusals = {
        "subset of tools": (["tools/alpha.yaml"], "2 of its 3 tools not given (beta, gamma)"),
        "another seed": (["--seed", "4"], "setting emulator_seed=4, but the run used 3"),
        "other personas": (["-p", "builder"], "personas builder, but the run asked"),
        "another model": (["--model", "emulator:gpt-5.6-luna"], "but the run used emulator:"),
    }
    for why, (args, message) in refusals.items():
        code, out = cli("run", "--resume", run_id, *args)
        assert code == 2, (why, out)
        assert message in out, (why, out)
        assert "cannot resume run" in out and out.count("\n") == 1, out
        assert snapshot(run_dir) == before, why
    (workspace / "tools" / "beta.yaml").write_text(TOOL.format(name="Beta") + "  Edited.\n")
    code, out = cli("run", "--resume", "latest")
    assert code == 2 and "tool file tools/beta.yaml changed since the run" in out
    assert snapshot(run_dir) == before
    (workspace / "tools" / "beta.yaml").write_text(TOOL.format(name="Beta"))
    code, out = cli("run", "--resume", run_id[:-1])  # a prefix; tools, personas, seed: manifest
    assert code == 0, out
    store = RunStore.open(workspace / "runs", run_id)
    results = list(store.iter_results())
    assert len(results) == 6 and len({(r.tool_slug, r.persona) for r in results}) == 6
    manifest = store.manifest()
    assert manifest.status == "complete" and manifest.settings["emulator_seed"] == 3


def test_resume_refuses_edited_personas_templates_and_other_settings(workspace: Path) -> None:
    import shutil

    from panel.inputs.workspace import builtin_dir

    for kind in ("personas", "prompts"):  # the workspace's own copies, edited below
        shutil.copytree(builtin_dir(kind), workspace / kind)  # type: ignore[arg-type]
    code, out = cli("run", "tools", "-p", "builder,skeptic", "--budget", "0")
    assert code == 1, out
    run_id = _run_ids(workspace / "runs")[0]
    run_dir = workspace / "runs" / run_id
    before = snapshot(run_dir)
    write_tools(workspace / "tools", "Delta")  # a tool file the run never had
    settings = {
        "max_tokens": ["--max-tokens", "4096"],
        "cache_ttl": ["--ttl", "1h"],
        "thinking": ["--thinking"],
        "emulator_behaviour": ["--behaviour", "echo"],
    }
    for key, args in settings.items():
        code, out = cli("run", "--resume", run_id, *args)
        assert code == 2 and f"setting {key}=" in out and out.count("\n") == 1, (key, out)
        assert snapshot(run_dir) == before, key
    code, out = cli("run", "--resume", run_id, "tools")  # the folder now holds Delta too
    assert code == 2 and "tools the run does not have (delta)" in out, out
    edits = {
        "personas/skeptic.md": "personas/skeptic.md changed since the run",
        "prompts/house.j2": "template prompts/house.j2 changed since the run",
    }
    for name, message in edits.items():
        path = workspace / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        code, out = cli("run", "--resume", run_id)
        assert code == 2 and message in out and out.count("\n") == 1, (name, out)
        assert snapshot(run_dir) == before, name
        path.write_bytes(original)
    code, out = cli("run", "--resume", run_id)  # back to the very same inputs: it finishes
    assert code == 0, out
    assert len(list(RunStore.open(workspace / "runs", run_id).iter_results())) == 6


def test_retry_failed_re_asks_only_the_failed_pairs(workspace: Path) -> None:
    from panel.runformat import PairResult

    code, out = cli("run", "tools", "-p", "skeptic", "--seed", "1")
    assert code == 0, out
    run_id = _run_ids(workspace / "runs")[0]
    results = workspace / "runs" / run_id / "results.jsonl"
    lines = results.read_text().splitlines()
    broken = json.loads(lines[1])
    broken.update(status="failed", ship=None, error_class="schema_invalid")
    lines[1] = PairResult.model_validate(broken).model_dump_json()
    results.write_text("\n".join(lines) + "\n")
    code, out = cli("run", "--resume", run_id)
    assert code == 1  # a plain resume leaves recorded failures alone
    code, out = cli("run", "--resume", run_id, "--retry-failed", "--no-cache")
    assert code == 0, out
    final = [PairResult.model_validate_json(x) for x in results.read_text().splitlines()]
    assert len(final) == 3 and all(r.status == "ok" for r in final)
    aside = (workspace / "runs" / run_id / "retried.jsonl").read_text().splitlines()
    assert len(aside) == 1 and '"failed"' in aside[0]
    code, out = cli("run", "tools", "--retry-failed")
    assert code == 2 and "use it with --resume" in out


def test_a_run_asked_without_the_result_cache_resumes_without_it(workspace: Path) -> None:
    code, out = cli("run", "tools", "-p", "skeptic", "--seed", "2")  # fills the result cache
    assert code == 0, out
    code, out = cli("run", "tools", "-p", "skeptic", "--seed", "2", "--no-cache", "--budget", "0")
    assert code == 1, out  # the budget stopped it before any pair
    run_id = re.search(r"run (\S+) started", out)[1]  # type: ignore[index]  # printed at start
    manifest = RunStore.open(workspace / "runs", run_id).manifest()
    assert manifest.settings["result_cache"] is False
    code, out = cli("run", "--resume", run_id)
    assert code == 0, out
    results = list(RunStore.open(workspace / "runs", run_id).iter_results())
    # Asked again, as the run was asked: nothing taken from the cache the first run filled.
    assert len(results) == 3 and not any(r.reused for r in results)
    assert all(r.attempts >= 1 for r in results)


def test_a_paused_batch_prints_the_command_that_finishes_it(workspace: Path) -> None:
    (workspace / "batch.yaml").write_text("tools: [tools/*.yaml]\npersonas: [builder, skeptic]\n")
    code, out = cli("batch", "batch.yaml", "--budget", "0")
    assert code == 1, out  # the budget stopped it before any pair: all pending
    (run_id,) = _run_ids(workspace / "runs")
    assert RunStore.open(workspace / "runs", run_id).manifest().status == "paused"
    # The summary's command names this manifest, not a placeholder, and runs as printed.
    command = f"panel batch batch.yaml --resume {run_id}"
    assert f"finish with: {command}\n" in out, out
    code, out = cli(*command.split()[1:])
    assert code == 0, out
    assert len(RunStore.open(workspace / "runs", run_id).results()) == 6


def test_a_resumed_run_says_so_after_its_stop(workspace: Path) -> None:
    code, out = cli("run", "tools", "-p", "builder,skeptic", "-c", "1", "--budget", "0.02")
    assert code == 1, out  # the budget paused it part way
    run_id = _run_ids(workspace / "runs")[0]
    store = RunStore.open(workspace / "runs", run_id)
    before = store.manifest()
    recorded = len(store.results())
    assert before.status == "paused" and 0 < recorded < 6, (before.status, recorded)
    code, out = cli("run", "--resume", run_id)
    assert code == 0, out
    # The history goes on: whatever paused it, then the resume, not a stop that never ended.
    notes = store.manifest().notes
    assert notes[: len(before.notes)] == before.notes
    assert notes[len(before.notes) :] == [f"resumed: {recorded} of 6 already recorded"], notes

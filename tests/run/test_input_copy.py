"""A run keeps a copy of exactly what it sent, and --resume works from the run folder alone."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from test_runs_and_resume import TOOL, _run_ids, cli, snapshot, workspace

from panel.inputs.workspace import builtin_dir
from panel.store.runs import RunStore

__all__ = ["workspace"]  # the fixture, shared with the resume specs


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def paused_run(ws: Path) -> tuple[str, Path]:
    code, out = cli("run", "tools", "-p", "builder,critic", "--seed", "3", "--budget", "0")
    assert code == 1, out
    run_id = _run_ids(ws / "runs")[0]
    return run_id, ws / "runs" / run_id


@pytest.fixture
def with_critic(workspace: Path) -> Path:
    """A workspace persona of its own (a copy of the skeptic with another id)."""
    skeptic = (builtin_dir("personas") / "skeptic.md").read_text()  # type: ignore[operator]
    (workspace / "personas").mkdir()
    text = skeptic.replace("id: skeptic", "id: critic").replace("The Skeptic", "The Critic")
    (workspace / "personas" / "critic.md").write_text(text)
    return workspace


def test_every_copied_file_matches_the_manifest_digest(with_critic: Path) -> None:
    _, run_dir = paused_run(with_critic)
    inputs = json.loads((run_dir / "run.json").read_text())["inputs"]
    copied = sorted(str(p.relative_to(run_dir / "inputs")) for p in run_dir.rglob("inputs/*/*"))
    assert copied == [
        "personas/builder.md",
        "personas/critic.md",
        "prompts/house.j2",
        "prompts/persona.j2",
        "prompts/tool.j2",
        "tools/alpha.yaml",
        "tools/beta.yaml",
        "tools/gamma.yaml",
    ]
    for slug, entry in inputs["tools"].items():
        assert sha(run_dir / "inputs" / "tools" / f"{slug}.yaml") == entry["digest"]
        assert (run_dir / "inputs" / "tools" / f"{slug}.yaml").read_bytes() == Path(
            entry["path"]
        ).read_bytes()
    for pid, entry in inputs["personas"].items():
        assert sha(run_dir / "inputs" / "personas" / f"{pid}.md") == entry["digest"]
    for name, want in inputs["templates"].items():
        assert sha(run_dir / "inputs" / "prompts" / name) == want


def test_resume_takes_what_the_workspace_lost_from_the_copy(with_critic: Path) -> None:
    run_id, _ = paused_run(with_critic)
    moved = with_critic.parent / "elsewhere"
    shutil.move(with_critic / "tools", moved)  # every tool file gone
    (with_critic / "personas" / "critic.md").unlink()  # and the workspace's own persona
    code, out = cli("run", "--resume", run_id)
    assert code == 0, out
    store = RunStore.open(with_critic / "runs", run_id)
    pairs = {(r.tool_slug, r.persona) for r in store.iter_results()}
    assert pairs == {(t, p) for t in ("alpha", "beta", "gamma") for p in ("builder", "critic")}
    assert store.manifest().status == "complete"
    assert store.manifest().inputs.tools["alpha"].path == "tools/alpha.yaml"  # as asked


def test_resume_still_refuses_a_workspace_file_that_differs_from_the_copy(
    with_critic: Path,
) -> None:
    run_id, run_dir = paused_run(with_critic)
    before = snapshot(run_dir)
    critic = with_critic / "personas" / "critic.md"
    critic.write_text(critic.read_text().replace("Ship only when", "Ship only if"))
    code, out = cli("run", "--resume", run_id)
    assert code == 2 and f"persona file {critic.resolve()} changed since the run" in out, out
    (with_critic / "personas" / "critic.md").unlink()
    (with_critic / "tools" / "beta.yaml").write_text(TOOL.format(name="Beta") + "  Edited.\n")
    code, out = cli("run", "--resume", run_id)
    assert code == 2 and "tool file tools/beta.yaml changed since the run" in out, out
    assert snapshot(run_dir) == before


def test_a_run_without_a_copy_still_resumes_and_gains_one(with_critic: Path) -> None:
    run_id, run_dir = paused_run(with_critic)
    shutil.rmtree(run_dir / "inputs")  # as a run made before copies were kept
    code, out = cli("run", "--resume", run_id)
    assert code == 0, out
    assert (run_dir / "inputs" / "tools" / "beta.yaml").read_bytes() == (
        with_critic / "tools" / "beta.yaml"
    ).read_bytes()
    shutil.rmtree(run_dir / "inputs")
    (with_critic / "tools" / "beta.yaml").unlink()
    code, out = cli("run", "--resume", run_id)
    assert code == 2 and "tools/beta.yaml is gone and run" in out and "no copy" in out, out

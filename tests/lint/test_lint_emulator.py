"""The must-shows on the emulator: a normal run of every example tool with every persona has
no findings; a run with the plant behaviour has every planted problem found, and nothing else.
Also `panel lint`'s inputs: the run's own tool copies, the manifest's paths, a results file."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from panel.cli import app
from panel.emulator.runner import EmulatorHandle
from panel.emulator.stubmodel import extract_context
from panel.emulator.stubplant import Plan, copy_role, plan_for
from panel.inputs.personas import load_personas
from panel.inputs.prompts import load_prompts, render_prompt
from panel.inputs.tools import load_tools
from panel.lintformat import LintReport

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "tools"
BASE = ["--model", "emulator:claude-sonnet-5", "--latency-scale", "0", "--no-cache"]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> dict[str, str]:
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return {"PANEL_EMULATOR_URL": emulator.base_url}


def run(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["run", *args, *BASE, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def lint(args: list[str], env: dict[str, str], code: int) -> LintReport:
    result = CliRunner().invoke(app, ["lint", *args, "--json"], env=env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return LintReport.model_validate_json(result.stdout)


def test_a_normal_run_of_every_example_tool_has_no_findings(
    tmp_path: Path, env: dict[str, str]
) -> None:
    runs = tmp_path / "runs"
    out = run([str(EXAMPLES), "--runs-dir", str(runs)], env)
    assert len(out["results"]) == 15 * 4 and all(r["status"] == "ok" for r in out["results"])
    assert out["lint"]["findings"] == 0 and all(r["lint"] == [] for r in out["results"])
    report = lint(["latest", "--runs-dir", str(runs)], env, 0)
    assert report.counts.findings == 0 and report.verdicts_checked == 60
    assert [c.verdicts for c in report.calibration] == [15, 15, 15, 15]
    on_disk = LintReport.model_validate_json((Path(out["run_dir"]) / "lint.json").read_bytes())
    assert on_disk.counts.findings == 0 and on_disk.run_id == out["run_id"]
    text = CliRunner().invoke(app, ["lint", out["run_id"][:15], "--runs-dir", str(runs)], env=env)
    assert text.exit_code == 0 and "no findings on 60 verdicts" in text.stdout


def planted(seed: int) -> tuple[dict[tuple[str, str], Plan], dict[str, str]]:
    """What the stub plants on every example tool × persona: the plans, and tool slugs by name."""
    prompts = load_prompts([REPO / "prompts"])
    personas = load_personas([REPO / "personas"])
    plans: dict[tuple[str, str], Plan] = {}
    slugs: dict[str, str] = {}
    questions: dict[str, list[str]] = {}
    for tool in load_tools([EXAMPLES]).tools:
        slugs[tool.spec.name] = tool.slug
        for persona in personas:
            parts = render_prompt(persona, tool, prompts)
            ctx = extract_context([parts.house, parts.persona, parts.tool])
            qids = [q for q, _ in ctx.questions]
            questions[persona.id] = qids
            plans[(tool.slug, persona.id)] = plan_for(
                seed, ctx.persona_id, ctx.tool_name, qids, ctx.untrusted
            )
    return plans, {"questions": json.dumps(questions)} | slugs


def expected_verdict_findings(
    plans: dict[tuple[str, str], Plan], questions: dict[str, list[str]]
) -> set[tuple[str, str, str, str]]:
    out = set()
    for (slug, persona), plan in plans.items():
        if plan.figure:
            field = {"quote": "quote", "headline": "headline"}.get(plan.figure_field)
            if field is None:
                field = "answers." + [q for q in questions[persona] if q != plan.restated][-1]
            out.add((slug, persona, "unverified_figure", field))
        if plan.marketing:
            out.add((slug, persona, "marketing_word", "quote"))
        if plan.tagline:
            out.add((slug, persona, "tagline", "quote"))
        if plan.formatting:
            out.add((slug, persona, "formatting", "quote"))
        if plan.long_headline:
            out.add((slug, persona, "headline_length", "headline"))
        if plan.restated:
            out.add((slug, persona, "answer_restates_question", f"answers.{plan.restated}"))
    return out


def test_lint_finds_every_planted_problem_and_nothing_else(
    tmp_path: Path, env: dict[str, str]
) -> None:
    seed = 0
    plans, extra = planted(seed)
    questions = json.loads(extra.pop("questions"))
    expected = expected_verdict_findings(plans, questions)
    kinds = {k for _, _, k, _ in expected}
    # The plan for this seed plants every kind, so the test cannot pass on an empty plan.
    assert kinds == {
        "unverified_figure", "marketing_word", "tagline", "formatting", "headline_length",
        "answer_restates_question",
    }  # fmt: skip
    assert {(p.figure_field) for p in plans.values() if p.figure} == {"quote", "headline", "answer"}
    roles = {persona: copy_role(seed, persona) for _, persona in plans}
    assert sorted(r for r in roles.values() if r) == ["persona", "tool", "tool"]

    runs = tmp_path / "runs"
    out = run([str(EXAMPLES), "--runs-dir", str(runs), "--behaviour", "plant", "--seed", "0"], env)
    report = lint(["latest", "--runs-dir", str(runs)], env, 1)
    found = {(v.tool, v.persona, f.check, f.field) for v in report.verdicts for f in v.findings}
    assert found == expected
    # Stored with each result, and counted in the run's report, the same as recomputed.
    stored = {
        (r["tool_slug"], r["persona"], f["check"], f["field"])
        for r in out["results"]
        for f in r["lint"]
    }
    assert stored == expected

    by_tool: dict[str, list[str]] = defaultdict(list)
    for (slug, persona), _ in plans.items():
        if roles[persona] == "tool":
            by_tool[slug].append(persona)
    similar = {(f.tool, frozenset(p.persona for p in f.pairs)) for f in report.run
               if f.check == "similar_quotes"}  # fmt: skip
    assert similar == {(slug, frozenset(ps)) for slug, ps in by_tool.items()}
    templates = {(f.persona, frozenset(p.tool for p in f.pairs)) for f in report.run
                 if f.check == "repeated_quote"}  # fmt: skip
    all_tools = frozenset(slug for slug, _ in plans)
    assert templates == {(p, all_tools) for p, role in roles.items() if role == "persona"}
    assert {f.check for f in report.run} == {"similar_quotes", "repeated_quote"}
    assert out["lint"]["findings"] == report.counts.findings


def test_lint_reads_the_runs_tool_copy_then_the_recorded_path_then_says_what_it_skipped(
    tmp_path: Path, env: dict[str, str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    tool = work / "cursor.yaml"
    shutil.copy(EXAMPLES / "cursor.yaml", tool)
    runs = tmp_path / "runs"
    out = run([str(tool), "--runs-dir", str(runs), "--behaviour", "plant"], env)
    full = lint([out["run_id"], "--runs-dir", str(runs)], env, 1)
    figures = [f for v in full.verdicts for f in v.findings if f.check in ("unverified_figure",
               "tagline")]  # fmt: skip
    assert figures and not [n for n in full.notes if "tool" in n]
    copy = Path(out["run_dir"]) / "inputs" / "tools" / "cursor.yaml"
    kept = copy.read_bytes()
    copy.write_text(kept.decode().replace("Cursor", "Edited"))  # a copy edited by hand ...
    tool.unlink()  # ... and the recorded path gone: those checks are skipped, the note says so
    partial = lint([out["run_id"], "--runs-dir", str(runs)], env, 1)
    assert not [f for v in partial.verdicts for f in v.findings if f.check == "tagline"]
    assert any("no tool description for cursor" in n for n in partial.notes)
    shutil.copy(EXAMPLES / "cursor.yaml", tool)  # the recorded path, as the run read it
    from_path = lint([out["run_id"], "--runs-dir", str(runs)], env, 1)
    assert from_path.verdicts == full.verdicts and from_path.notes == full.notes
    tool.unlink()
    copy.write_bytes(kept)  # the run's own copy alone is enough
    again = lint([out["run_id"], "--runs-dir", str(runs)], env, 1)
    assert again.verdicts == full.verdicts and again.notes == full.notes
    # The same verdicts from elsewhere: a results file and the tool file.
    elsewhere = tmp_path / "theirs.jsonl"
    shutil.copy(Path(out["run_dir"]) / "results.jsonl", elsewhere)
    theirs = lint(["--results", str(elsewhere), str(EXAMPLES / "cursor.yaml")], env, 1)
    assert theirs.verdicts == full.verdicts and theirs.run_id is None


def test_lint_errors_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from panel.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": 1, "tool": "x"}\n')
    cursor = str(EXAMPLES / "cursor.yaml")
    cases = [
        (["nope", "--runs-dir", str(tmp_path)], "no run nope"),
        ([], "give one run"),
        (["--results", str(tmp_path / "missing.jsonl"), cursor], "missing.jsonl: cannot read"),
        (["--results", str(bad)], "needs the tool files"),
        (["--results", str(bad), cursor], "bad.jsonl:1: not a result line"),
    ]
    for args, why in cases:
        monkeypatch.setattr("sys.argv", ["panel", "lint", *args])
        with pytest.raises(SystemExit) as exc:
            main()
        err = capsys.readouterr().err
        assert exc.value.code == 2, (args, err)
        assert err.count("\n") == 1 and err.startswith("panel: error:") and why in err, err

"""Samples and juries together with the lint, the run's input copy, tool pages and the editor's
review: each draw is linted, the report checks the draw a page quotes, tool pages show the
split, and the site diff marks flips stable or unstable next to the lint section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_samples import CURSOR, MODEL, OLLAMA, panel, run_json

JURY = "emulator:claude-sonnet-5,emulator:gpt-5.6-luna,emulator:claude-haiku-4-5"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "drawn", [["--samples", "3", *MODEL], ["--jury", JURY]], ids=["samples", "jury"]
)
def test_every_draw_is_linted_and_the_report_checks_the_shown_one(
    env: dict[str, str], tmp_path: Path, drawn: list[str]
) -> None:
    code, out, err = panel(
        "run", str(CURSOR), str(OLLAMA), *drawn, "--behaviour", "plant", "--json", env=env
    )
    assert code == 0, err
    data = json.loads(out)
    run = tmp_path / "runs" / data["run_id"]
    lines = _lines(run / "results.jsonl")
    assert len(lines) == 24  # 2 tools × 4 personas × 3 draws
    assert all(r["lint"] for r in lines if r["status"] == "ok")  # planted: every draw flagged
    report = json.loads((run / "lint.json").read_text())
    # One verdict per pair: the draw its page quotes, with the findings stored on that line.
    assert report["verdicts_checked"] == 8
    by_draw = {(r["tool_slug"], r["persona"], r["model"], r["sample"]): r for r in lines}
    for pair in data["verdicts"]["pairs"]:
        split = pair["sampling"]
        shown = by_draw[
            (pair["tool_slug"], pair["persona"], split["quoted_model"], split["quoted_sample"])
        ]
        stored = {f["check"] for f in shown["lint"]}
        reported = next(
            (
                v
                for v in report["verdicts"]
                if (v["tool"], v["persona"]) == (pair["tool_slug"], pair["persona"])
            ),
            {"findings": []},
        )
        assert {f["check"] for f in reported["findings"]} == stored
    # A persona's draws of one tool are never "similar quotes" of each other.
    for finding in report["run"]:
        named = [(p["tool"], p["persona"]) for p in finding["pairs"]]
        assert len(named) == len(set(named))
    code, out, err = panel("lint", data["run_id"], "--json", env=env)
    assert code == 1, err  # findings: the lint's documented exit
    assert json.loads(out)["counts"] == report["counts"]
    # The run kept a copy of what it sent, whichever way it drew.
    assert (run / "inputs" / "tools" / "cursor.yaml").read_bytes() == CURSOR.read_bytes()
    assert (run / "inputs" / "prompts" / "house.j2").is_file()


def test_tool_pages_show_the_samples_split_like_a_comparison(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_id = run_json(str(CURSOR), "--samples", "3", env=env)["run_id"]
    code, _, err = panel("publish", run_id, "--allow-synthetic", env=env)
    assert code == 0, err
    page = tmp_path / "site" / "cursor--verdict"
    record = json.loads(page.with_suffix(".json").read_text())
    card = record["tool"]
    assert card["stability"]["samples"] == 3 and card["stability"]["measured"] == 4
    assert all(e["sampling"]["of"] == 3 for e in card["scorecard"])
    html = page.with_suffix(".html").read_text()
    assert "of 3 samples" in html and "of 4 stable" in html and "exact bootstrap" in html
    assert "of 3 samples" in page.with_suffix(".md").read_text()
    ledger = json.loads((tmp_path / "site" / ".panel-site.json").read_text())
    shown = ledger["pages"]["cursor--verdict"]["verdicts"]
    assert all(len(v["draws"]) == 3 and v["stable"] is not None for v in shown)


def test_a_jury_tool_page_names_the_models(env: dict[str, str], tmp_path: Path) -> None:
    code, out, err = panel("run", str(CURSOR), "--jury", JURY, "--json", env=env)
    assert code == 0, err
    code, _, err = panel("publish", json.loads(out)["run_id"], "--allow-synthetic", env=env)
    assert code == 0, err
    html = (tmp_path / "site" / "cursor--verdict.html").read_text()
    assert "of 3 models" in html and "jury of 3 models" in html and "Quote by" in html


def test_the_site_review_marks_flips_by_the_ledger_before_its_lint_section(
    env: dict[str, str], tmp_path: Path
) -> None:
    before = run_json(str(CURSOR), str(OLLAMA), "--samples", "3", env=env)["run_id"]
    code, _, err = panel("publish", before, "--allow-synthetic", env=env)
    assert code == 0, err
    after = run_json(
        str(CURSOR),
        str(OLLAMA),
        "--samples",
        "3",
        "--flips",
        "*=0.9",
        "--behaviour",
        "plant",
        env=env,
    )["run_id"]
    # No run argument pair: what publishing `after` would change, against the site's ledger.
    code, out, err = panel("diff", after, "--json", env=env)
    assert code == 0, err
    review = json.loads(out)
    assert review["against"] == "site"
    flips = [c for c in review["changes"] if c["kind"] == "flip"]
    assert flips and all(c["stability"] in ("stable", "unstable") for c in flips)
    assert review["summary"]["unstable_flips"] > 0 and review["lint"]
    code, text, _ = panel("diff", after, env=env)
    assert "(unstable pair)" in text
    assert text.index("Flip stability: ") < text.index("Lint (house rules)")
    code, _, _ = panel("diff", after, "--fail-on", "stable-flip", env=env)
    stable = review["summary"]["flips"] - review["summary"]["unstable_flips"]
    assert code == (1 if stable else 0)
    code, _, err = panel("publish", after, "--allow-synthetic", env=env)
    assert code == 1 and "(on an unstable verdict)" in err

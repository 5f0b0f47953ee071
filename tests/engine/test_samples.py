"""`--samples K` end to end on the emulator: draws, agreement, intervals, cost, resume, pages."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cli_inprocess import cli

from panel.emulator.runner import EmulatorHandle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tools"
CURSOR, OLLAMA = EXAMPLES / "cursor.yaml", EXAMPLES / "ollama.yaml"
MODEL = ["--model", "emulator:claude-sonnet-5"]


def panel(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """`panel ARGS` as a user runs it; `env` is the fixture that set the environment."""
    del env
    return cli(*args)


def run_json(*args: str, env: dict[str, str]) -> dict[str, Any]:
    code, out, err = panel("run", *args, *MODEL, "--json", env=env)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_five_samples_give_agreement_an_interval_and_cost_the_sampling_floor(
    env: dict[str, str], emulator: EmulatorHandle
) -> None:
    out = run_json(str(CURSOR), "--samples", "5", env=env)
    results = out["results"]
    assert len(results) == 20  # 4 personas × 5 samples, one line each
    assert Counter((r["persona"], r["sample"]) for r in results) == {
        (p, k): 1 for p in ("builder", "skeptic", "futurist", "business") for k in range(5)
    }
    pairs = out["verdicts"]["pairs"]
    assert [p["persona"] for p in pairs] == ["builder", "skeptic", "futurist", "business"]
    for p in pairs:
        mine = [r for r in results if r["persona"] == p["persona"]]
        ships = sum(1 for r in mine if r["ship"])
        majority = ships * 2 > 5
        split = p["sampling"]
        assert p["ship"] is majority and split["of"] == 5 and split["unit"] == "samples"
        assert split["agreement"] == (ships if majority else 5 - ships)
        assert split["flip_rate"] == pytest.approx((5 - split["agreement"]) / 5)
        # With five samples only unanimity is stable.
        assert split["stable"] is (split["agreement"] == 5)
        quoted = next(r for r in mine if r["sample"] == split["quoted_sample"])
        assert quoted["ship"] is majority  # the quote is from the majority's side
    # The emulator's builder flips later samples with p = 0.35: somewhere they disagree.
    assert any(p["sampling"]["agreement"] < 5 for p in pairs)
    (tool,) = out["verdicts"]["tools"]
    lo, hi = tool["interval"]
    assert lo <= tool["ship_pct"] <= hi and tool["measured"] == 4
    # Cost: the tool block is a breakpoint; every sample after the first reads the whole prompt.
    plan = {s["name"]: s for s in out["cache_plan"]["segments"]}
    assert (
        plan["tool-blocks:builder×5"]["shared_by"] == 5
        and plan["tool-blocks:builder×5"]["cacheable"]
    )
    prompt = sum(
        plan[n]["tokens"] for n in ("tools+house", "persona:builder", "tool-blocks:builder×5")
    )
    later = [r for r in results if r["persona"] == "builder" and r["sample"] > 0]
    assert all(r["usage"]["cache_read_tokens"] == prompt for r in later)
    assert all(r["usage"]["input_tokens"] == 0 for r in later)
    cost = out["cost"]
    assert cost["usd"] <= 1.05 * cost["floor_usd"]
    assert emulator.stats()["billed_usd"] == pytest.approx(cost["usd"], rel=1e-6)
    # Samples share their body byte for byte; the header tells them apart.
    sent = [r for r in emulator.requests() if '<persona id=\\"builder\\"' in json.dumps(r["body"])]
    bodies = {json.dumps(r["body"], sort_keys=True) for r in sent}
    assert len(bodies) == 1
    assert sorted(r["headers"].get("x-panel-sample", "0") for r in sent) == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]


def test_the_default_run_is_one_draw_per_pair_with_no_interval(env: dict[str, str]) -> None:
    out = run_json(str(CURSOR), env=env)
    assert [r["sample"] for r in out["results"]] == [0, 0, 0, 0]
    assert out["verdicts"]["tools"][0]["interval"] is None
    assert all(p["sampling"]["stable"] is None for p in out["verdicts"]["pairs"])
    assert not any(s["name"].startswith("tool-blocks") for s in out["cache_plan"]["segments"])


def test_flips_are_seeded_overridable_and_sample_zero_is_the_unsampled_run(
    env: dict[str, str],
) -> None:
    none = run_json(str(CURSOR), "--samples", "3", "--flips", "*=0", "--no-cache", env=env)
    assert all(
        p["sampling"]["stable"] and p["sampling"]["agreement"] == 3
        for p in none["verdicts"]["pairs"]
    )
    always = run_json(str(CURSOR), "--samples", "3", "--flips", "*=1", "--no-cache", env=env)
    first = {r["persona"]: r["ship"] for r in always["results"] if r["sample"] == 0}
    assert all(r["ship"] != first[r["persona"]] for r in always["results"] if r["sample"])
    one = run_json(str(CURSOR), "--no-cache", env=env)
    assert first == {r["persona"]: r["ship"] for r in one["results"]}  # sample 0 = K=1
    again = run_json(str(CURSOR), "--samples", "3", "--flips", "*=1", "--no-cache", env=env)
    assert [r["ship"] for r in again["results"]] == [r["ship"] for r in always["results"]]


def test_more_samples_reuse_the_draws_already_paid_for(env: dict[str, str]) -> None:
    run_json(str(CURSOR), env=env)  # K=1: its verdicts are sample 0 of any later K
    three = run_json(str(CURSOR), "--samples", "3", env=env)
    assert three["reused"] == 4 and three["requested"] == 8
    assert {r["sample"] for r in three["results"] if r["reused"]} == {0}
    five = run_json(str(CURSOR), "--samples", "5", env=env)
    assert five["reused"] == 12 and five["requested"] == 8


def test_resume_finishes_every_draw_once_and_refuses_another_k(
    env: dict[str, str], emulator: EmulatorHandle, tmp_path: Path
) -> None:
    code, out, err = panel(
        "run",
        str(CURSOR),
        *MODEL,
        "--samples",
        "3",
        "-c",
        "1",
        "--budget",
        "0.001",
        "--json",
        env=env,
    )
    assert code == 1, err
    stopped = json.loads(out)  # one request at a time: the first verdict spends the budget
    assert stopped["status"] == "paused" and len(stopped["results"]) == 1
    assert len(stopped["pending"]) == 11  # one line per draw still to ask
    run_id = stopped["run_id"]
    code, _, err = panel("run", "--resume", run_id, "--samples", "2", env=env)
    assert code == 2 and "--samples 2, but the run draws 3 per pair" in err, (code, err)
    code, out, err = panel("run", "--resume", run_id, "--json", env=env)
    assert code == 0, err
    lines = [
        json.loads(x)
        for x in (tmp_path / "runs" / run_id / "results.jsonl").read_text().splitlines()
    ]
    draws = [(r["persona"], r["sample"]) for r in lines]
    assert len(draws) == len(set(draws)) == 12
    assert json.loads(out)["status"] == "complete"
    attempts = [
        json.loads(x)
        for x in (tmp_path / "runs" / run_id / "attempts.jsonl").read_text().splitlines()
    ]
    paid = Counter((a["persona"], a["sample"]) for a in attempts if a["billed"])
    assert set(paid.values()) == {1}  # nothing paid twice across the pause


def test_compare_with_samples_shows_the_split_and_the_interval_on_the_page(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, _, err = panel(
        "compare", str(CURSOR), str(OLLAMA), *MODEL, "--samples", "5", "--out", "site-out", env=env
    )
    assert code == 0, err
    assert "stable · a rerun could read" in err  # the one-screen summary says it too
    record = json.loads((tmp_path / "site-out" / "cursor--vs--ollama.json").read_text())
    for card in record["tools"]:
        lo, hi = card["stability"]["interval"]
        assert lo <= card["panel_ship_pct"] <= hi
        assert card["stability"]["samples"] == 5
        for entry in card["scorecard"]:
            assert entry["sampling"]["of"] == 5 and entry["sampling"]["unit"] == "samples"
    html = (tmp_path / "site-out" / "cursor--vs--ollama.html").read_text()
    assert "of 4 stable" in html and "a rerun could read" in html
    assert "of 5 samples" in html and "exact bootstrap" in html
    md = (tmp_path / "site-out" / "cursor--vs--ollama.md").read_text()
    assert "of 5 samples" in md


def test_a_record_without_samples_is_unchanged(env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = panel("compare", str(CURSOR), str(OLLAMA), *MODEL, "--out", "o", env=env)
    assert code == 0, err
    text = (tmp_path / "o" / "cursor--vs--ollama.json").read_text()
    assert '"sampling"' not in text and '"stability"' not in text


def test_diff_and_publish_tell_unstable_flips_from_stable_ones(
    env: dict[str, str], tmp_path: Path
) -> None:
    # Two sampled runs whose draws differ (most later samples flip in the second): the flips
    # land on pairs whose samples disagree, which the diff and the gate call unstable.
    tools = (str(CURSOR), str(OLLAMA))
    before = run_json(*tools, "--samples", "3", env=env)["run_id"]
    after = run_json(*tools, "--samples", "3", "--flips", "*=0.9", env=env)["run_id"]
    for run_id in (before, after):
        code, _, err = panel(
            "compare", "cursor", "ollama", "--run", run_id, *MODEL, "--samples", "3", env=env
        )
        assert code == 0 and "0 asked" in err, err  # the run's own draws, none asked again
    code, _, err = panel("publish", before, "--allow-synthetic", env=env)
    assert code == 0, err
    ledger = json.loads((tmp_path / "site" / ".panel-site.json").read_text())
    shown = next(iter(ledger["pages"].values()))["verdicts"]
    assert all(len(v["draws"]) == 3 and v["stable"] is not None for v in shown)
    code, out, _ = panel("diff", before, after, "--json", env=env)
    diff = json.loads(out)
    flips = [c for c in diff["changes"] if c["kind"] == "flip"]
    assert flips and all(c["stability"] in ("stable", "unstable") for c in flips)
    assert diff["summary"]["unstable_flips"] == sum(c["stability"] == "unstable" for c in flips)
    assert diff["summary"]["unstable_flips"] > 0
    code, text, _ = panel("diff", before, after, env=env)
    # The editor's review: each flip's line says which kind it is, and a section lists them
    # with what each kind means (in every format, before the lint section).
    assert "(unstable pair)" in text and "may be sampling noise" in " ".join(text.split())
    assert "Flip stability: " in text and "\n  unstable: " in text
    for fmt, heading in (("md", "## Flip stability"), ("html", "<h2>Flip stability</h2>")):
        code, page, _ = panel("diff", before, after, "--format", fmt, env=env)
        assert heading in page and "may be sampling noise" in page
        mark = "(unstable pair)" if fmt == "md" else 'class="kind stability unstable"'
        assert mark in page
    stable_only = diff["summary"]["flips"] - diff["summary"]["unstable_flips"]
    code, _, _ = panel("diff", before, after, "--fail-on", "stable-flip", env=env)
    assert code == (1 if stable_only else 0)
    code, _, err = panel("publish", after, "--allow-synthetic", env=env)
    assert code == 1
    assert "(on an unstable verdict)" in err and "may be sampling noise" in err

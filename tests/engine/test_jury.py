"""`--jury` end to end on the emulator: every persona on every model, agreement figures,
per-model costs, a page that shows the split, and a resume that stays the same jury."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from test_samples import EXAMPLES, panel

from panel.emulator.runner import EmulatorHandle

JURY = "emulator:claude-sonnet-5,emulator:gpt-5.6-luna,emulator:claude-haiku-4-5"
MODELS = JURY.split(",")
TOOLS = [str(EXAMPLES / f"{name}.yaml") for name in ("cursor", "ollama", "modal")]


def test_a_jury_run_reports_agreement_and_each_model_s_cost(
    env: dict[str, str], emulator: EmulatorHandle
) -> None:
    code, out, err = panel("run", *TOOLS, "--jury", JURY, "--json", env=env)
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == "jury:" + JURY
    assert Counter(r["model"] for r in data["results"]) == {m: 12 for m in MODELS}
    agreement = data["verdicts"]["agreement"]
    assert agreement["models"] == MODELS and agreement["pairs"] == 12
    assert 0 < agreement["percent_agreement"] < 1  # the emulated models do dissent
    assert agreement["fleiss_kappa"] is not None and agreement["fleiss_kappa"] < 1
    # claude-sonnet-5 is the emulator's reference: it dissents least.
    assert agreement["dissents_most"] in MODELS[1:] and agreement["dissent"][MODELS[0]] <= min(
        agreement["dissent"][m] for m in MODELS[1:]
    )
    for p in data["verdicts"]["pairs"]:
        split = p["sampling"]
        votes = [m["ship"] for m in split["models"]]
        assert split["unit"] == "models" and split["of"] == 3
        assert p["ship"] is (sum(votes) >= 2) and split["agreement"] == max(
            sum(votes), 3 - sum(votes)
        )
        quoted = next(
            r
            for r in data["results"]
            if (r["tool_slug"], r["persona"], r["model"])
            == (p["tool_slug"], p["persona"], split["quoted_model"])
        )
        assert quoted["ship"] is p["ship"]  # the quote comes from the majority
    members = data["members"]
    assert list(members) == MODELS
    for model, member in members.items():
        assert member["cache_stats"]["requests"] == 12, model
        assert member["cost"]["usd"] > 0 and member["cache_plan"]["segments"]
    assert data["cost"]["usd"] == pytest.approx(sum(m["cost"]["usd"] for m in members.values()))
    # Each model has its own cache: sonnet writes the house block once and reads it after.
    sonnet = members[MODELS[0]]
    assert sonnet["cost"]["usd"] <= 1.05 * sonnet["cost"]["floor_usd"]
    assert sonnet["cache_stats"]["requests_reading_cache"] == 11
    assert emulator.stats()["billed_usd"] == pytest.approx(data["cost"]["usd"], rel=1e-6)
    code, text, _ = panel("run", *TOOLS, "--jury", JURY, env=env)  # all reused: the report
    assert code == 0 and "of 3 models" in text and "Fleiss' kappa" in text
    assert "each model of the jury" in text


def test_the_page_shows_the_jury_split_and_who_wrote_the_quote(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, _, err = panel("compare", TOOLS[0], TOOLS[2], "--jury", JURY, "--out", "o", env=env)
    assert code == 0, err
    assert "jury of 3 models" in err
    record = json.loads((tmp_path / "o" / "cursor--vs--modal.json").read_text())
    assert record["provenance"]["model"] == "jury:" + JURY
    entries = [e for card in record["tools"] for e in card["scorecard"]]
    assert all(e["sampling"]["unit"] == "models" for e in entries)
    assert all(len(e["sampling"]["models"]) == 3 for e in entries)  # every model's verdict
    html = (tmp_path / "o" / "cursor--vs--modal.html").read_text()
    assert "of 3 models" in html and "Quote by" in html and "jury of 3 models" in html
    splits = [e for e in entries if e["sampling"]["agreement"] == 2]
    assert splits, "some persona is split 2 of 3 on these tools (seeded)"
    label = "Ship" if splits[0]["ship"] else "Not ship"
    assert f"{label} · 2 of 3 models" in html


def test_jury_resume_and_bad_juries(env: dict[str, str]) -> None:
    code, _, err = panel("run", TOOLS[0], "--jury", "emulator:claude-sonnet-5", env=env)
    assert code == 2 and "two or more models" in err
    code, _, err = panel(
        "run", TOOLS[0], "--jury", JURY, "--model", "emulator:claude-sonnet-5", env=env
    )
    assert code == 2 and "not both" in err
    # One request in flight per model: each model's first verdict spends the (shared) budget.
    code, out, err = panel(
        "run", TOOLS[0], "--jury", JURY, "-c", "1", "--budget", "0.001", "--json", env=env
    )
    assert code == 1, err
    paused = json.loads(out)
    assert paused["status"] == "paused" and len(paused["pending"]) == 9
    assert Counter(r["model"] for r in paused["results"]) == dict.fromkeys(MODELS, 1)
    run_id = paused["run_id"]
    code, _, err = panel("run", "--resume", run_id, "--model", "emulator:claude-sonnet-5", env=env)
    assert code == 2 and "is a jury" in err
    code, out, err = panel("run", "--resume", run_id, "--json", env=env)
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "complete" and len(data["results"]) == 12
    draws = [(r["persona"], r["model"]) for r in data["results"]]
    assert len(set(draws)) == 12

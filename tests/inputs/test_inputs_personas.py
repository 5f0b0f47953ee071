"""Persona files: the shipped four, the lint rules, overrides, and `panel personas`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from panel.cli.personas import register
from panel.errors import ConfigError, PersonaError
from panel.inputs.personas import lint_personas, load_personas, parse_persona_file, select_personas

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "personas"
RUBRICS = {
    "builder": ["primitive", "dx_bet", "moment_of_truth", "weekend_script", "ship_decision"],
    "skeptic": ["competitors", "breaking_scenario", "prediction", "wrong_if", "verdict_reason"],
    "futurist": ["thesis", "dependency", "second_order", "timing", "infrastructure_future"],
    "business": [
        "buyer_budget", "pricing_architecture", "moat", "price_drop_10x", "viability_decision"
    ],
}  # fmt: skip
BODY = "A brief about who this reviewer is and how they write. " * 8
RUBRIC = "rubric:\n  - id: first_run\n    question: What happens on first run?"
NEW = f"""---
id: designer
name: The Designer
title: Product designer
order: 5
lens: Interface clarity
ship_bar: Ship when a first-time user succeeds unaided.
rubric:
  - id: first_run
    question: What happens on first run?
---
{BODY}
"""


def persona_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "personas"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


def test_shipped_personas_lint_clean_and_load_in_order() -> None:
    assert lint_personas([SHIPPED]) == []
    personas = load_personas([SHIPPED])
    assert [p.id for p in personas] == ["builder", "skeptic", "futurist", "business"]
    for p in personas:
        assert p.rubric_ids == RUBRICS[p.id]
        assert 350 <= len(p.body.split()) <= 520, p.id
        assert p.digest.startswith("sha256:") and p.path.endswith(f"{p.id}.md")


def test_futurist_timing_question_names_the_three_answers() -> None:
    futurist = next(p for p in load_personas([SHIPPED]) if p.id == "futurist")
    timing = next(q.question for q in futurist.rubric if q.id == "timing")
    assert all(word in timing for word in ("early", "on time", "late"))


def test_a_user_adds_a_persona_by_adding_a_file(tmp_path: Path) -> None:
    local = persona_dir(tmp_path, {"designer.md": NEW})
    ids = [p.id for p in load_personas([local, SHIPPED])]
    assert ids == ["builder", "skeptic", "futurist", "business", "designer"]


def test_a_workspace_file_overrides_a_builtin_by_id(tmp_path: Path) -> None:
    text = NEW.replace("id: designer", "id: skeptic").replace("order: 5", "order: 2")
    local = persona_dir(tmp_path, {"my-skeptic.md": text})
    personas = load_personas([local, SHIPPED])
    skeptic = next(p for p in personas if p.id == "skeptic")
    assert skeptic.name == "The Designer" and len(personas) == 4
    assert lint_personas([local, SHIPPED]) == []


def test_select_personas_keeps_display_order_and_rejects_unknown() -> None:
    personas = load_personas([SHIPPED])
    assert [p.id for p in select_personas(personas, ["business", "builder"])] == [
        "builder", "business"
    ]  # fmt: skip
    assert select_personas(personas, None) == personas
    with pytest.raises(ConfigError, match="unknown persona 'nobody'"):
        select_personas(personas, ["nobody"])


@pytest.mark.parametrize(
    ("files", "needle", "field"),
    [
        ({"a.md": NEW, "b.md": NEW}, "duplicate persona id 'designer'", "id"),
        (
            {
                "a.md": NEW.replace(
                    "rubric:\n  - id: first_run\n    question: What happens on first run?",
                    "rubric: []",
                )
            },
            "rubric is empty",
            "rubric",
        ),
        (
            {
                "a.md": NEW.replace(
                    "    question: What happens on first run?",
                    "    question: Q1\n  - id: first_run\n    question: Q2",
                )
            },
            "duplicate rubric question id 'first_run'",
            "rubric",
        ),
        ({"a.md": NEW.replace("lens:", "lense:")}, "unknown field 'lense'", "lense"),
        ({"a.md": NEW.replace("order: 5", "order: fifth")}, "order", "order"),
        ({"a.md": NEW.replace(BODY, "")}, "body is missing", "body"),
        ({"a.md": NEW, "b.md": NEW.replace("designer", "writer")}, "order 5 clashes", "order"),
        ({"a.md": BODY}, "front matter", None),
        ({"a.md": NEW.replace("title: Product designer", "title: [oops")}, "line", None),
        ({"a.md": NEW.replace("id: designer", "id: ../Evil")}, "id must be", "id"),
    ],
)
def test_lint_catches(
    tmp_path: Path, files: dict[str, str], needle: str, field: str | None
) -> None:
    issues = lint_personas([persona_dir(tmp_path, files)])
    assert any(needle in str(i) and i.field == field for i in issues), issues


def test_b01_persona_syntax_error_names_path_and_line(tmp_path: Path) -> None:
    d = persona_dir(tmp_path, {"a.md": NEW.replace("title: Product designer", "title: [oops")})
    (issue,) = lint_personas([d])
    assert issue.line == 5 and str(issue).startswith(f"{d / 'a.md'}:5:")
    with pytest.raises(PersonaError, match="line 5"):
        load_personas([d])
    with pytest.raises(PersonaError):
        parse_persona_file(d / "a.md")


def test_order_clash_warns_but_still_loads(tmp_path: Path) -> None:
    d = persona_dir(tmp_path, {"a.md": NEW, "b.md": NEW.replace("designer", "writer")})
    assert [p.id for p in load_personas([d])] == ["designer", "writer"]


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_personas_list_and_show() -> None:
    runner = CliRunner()
    result = runner.invoke(cli(), ["personas", "list", "--dir", str(SHIPPED), "--json"])
    assert result.exit_code == 0, result.output
    assert [p["id"] for p in json.loads(result.output)] == list(RUBRICS)
    table = runner.invoke(cli(), ["personas", "list", "--dir", str(SHIPPED)])
    assert table.exit_code == 0 and "skeptic" in table.output and "The Futurist" in table.output
    shown = runner.invoke(cli(), ["personas", "show", "business", "--dir", str(SHIPPED)])
    assert shown.exit_code == 0 and "price_drop_10x" in shown.output


def test_cli_personas_lint_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    clean = runner.invoke(cli(), ["personas", "lint", "--dir", str(SHIPPED)])
    assert clean.exit_code == 0
    bad = tmp_path / "bad"
    shutil.copytree(SHIPPED, bad)
    (bad / "copy.md").write_text((SHIPPED / "builder.md").read_text())
    result = runner.invoke(cli(), ["personas", "lint", "--dir", str(bad), "--json"])
    assert result.exit_code == 1
    assert any("duplicate persona id 'builder'" in i["message"] for i in json.loads(result.output))

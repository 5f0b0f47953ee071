"""`panel compare A B` uses the whole panel: every workspace persona, current verdicts reused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_inprocess import cli

from panel.emulator.runner import EmulatorHandle

TOOL = """name: {name}
category: Developer Tools
tagline: {name} in one line
pricing: Free
description: |
  {name} is a developer tool that indexes a repository and answers questions about it.
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PANEL_EMULATOR_URL", emulator.base_url)
    (tmp_path / "tools").mkdir()
    for name in ("Alpha", "Beta"):
        (tmp_path / "tools" / f"{name.lower()}.yaml").write_text(TOOL.format(name=name))
    return tmp_path


def test_compare_after_a_narrow_run_gives_all_four_reviewers(workspace: Path) -> None:
    code, _, err = cli("run", "tools", "--personas", "builder,skeptic")
    assert code == 0, err
    code, out, err = cli("compare", "tools/alpha.yaml", "tools/beta.yaml")
    assert code == 0, err
    assert "using the built-in emulator" in err  # no key: the emulator, like `panel run`
    panel = "builder, skeptic, futurist, business"
    assert f"reviewers: {panel} (4 of 4 on Alpha, 4 of 4 on Beta)" in err
    assert "synthetic verdicts (emulator)" in err
    # builder and skeptic came from the result cache; futurist and business were asked
    assert "4 reused from the result cache, 4 asked" in err, err
    page = json.loads(Path(out.split()[2]).read_text())
    assert [len(t["scorecard"]) for t in page["tools"]] == [4, 4]
    assert all(t["verdicts"] == 4 for t in page["tools"])
    code, out, err = cli("compare", "tools/alpha.yaml", "tools/beta.yaml")
    assert code == 0 and "8 current from run" in err and "0 asked" in err  # nothing re-asked
    code, out, err = cli("compare", "alpha", "beta", "--personas", "skeptic")
    assert code == 0 and "reviewers: skeptic (1 of 1 on Alpha" in err  # narrowed on purpose


def test_compare_ignores_verdicts_whose_persona_changed(workspace: Path) -> None:
    from panel.inputs.workspace import builtin_dir

    code, _, err = cli("run", "tools")
    assert code == 0, err
    src = builtin_dir("personas")
    assert src is not None
    (workspace / "personas").mkdir()
    for f in src.iterdir():
        (workspace / "personas" / f.name).write_bytes(f.read_bytes())
    skeptic = workspace / "personas" / "skeptic.md"
    skeptic.write_text(skeptic.read_text().replace("ship_bar:", "ship_bar: Stricter now.", 1))
    code, _, err = cli("compare", "alpha", "beta")
    assert code == 0, err
    assert "2 asked" in err, err  # only the skeptic's two verdicts are stale

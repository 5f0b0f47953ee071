"""Workspace lookup: the current folder's personas/ and prompts/ come before the built-ins."""

from __future__ import annotations

from pathlib import Path

from panel.inputs.workspace import builtin_dir, persona_dirs, prompt_dirs

REPO = Path(__file__).resolve().parents[2]


def test_builtins_are_found_without_a_workspace(tmp_path: Path) -> None:
    assert persona_dirs(tmp_path) == [(REPO / "personas").resolve()]
    assert prompt_dirs(tmp_path) == [(REPO / "prompts").resolve()]
    assert builtin_dir("personas") == REPO / "personas"


def test_workspace_folders_come_first(tmp_path: Path) -> None:
    (tmp_path / "personas").mkdir()
    (tmp_path / "prompts").mkdir()
    assert persona_dirs(tmp_path)[0] == (tmp_path / "personas").resolve()
    assert prompt_dirs(tmp_path) == [(tmp_path / "prompts").resolve(), (REPO / "prompts").resolve()]


def test_running_inside_the_repo_does_not_list_a_folder_twice() -> None:
    assert persona_dirs(REPO) == [(REPO / "personas").resolve()]

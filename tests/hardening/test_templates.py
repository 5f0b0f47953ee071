"""Issue 12, item 9: a template from a pull request can neither read outside the template
folders nor run away; each refusal is one-line TemplateError before any request."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from panel.emulator.runner import EmulatorHandle
from panel.errors import TemplateError
from panel.inputs.prompts import load_prompts
from panel.inputs.workspace import builtin_dir, prompt_dirs

from .cli_proc import panel
from .conftest import write_tool

pytestmark = pytest.mark.timeout(60)
BUILTIN = builtin_dir("prompts")
assert BUILTIN is not None


def _workspace(tmp: Path, house_extra: str = "") -> Path:
    prompts = tmp / "prompts"
    prompts.mkdir()
    house = (BUILTIN / "house.j2").read_text()
    (prompts / "house.j2").write_text(house + house_extra)
    return prompts


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param("{{ 'x' * 10**9 }}", id="repeat-1e9"),
        pytest.param("{{ 'x' * 100000 * 100000 }}", id="repeat-chained"),
        pytest.param("{{ 9 ** 9 ** 9 }}", id="power-tower"),
        pytest.param("{{ range(10**12) | list }}", id="huge-range"),
        pytest.param("{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}"
                     "{% endfor %}", id="nested-loops"),
        pytest.param("{{ 'x' | center(10**9) }}", id="center-filter"),
        pytest.param("{{ 'ab' | indent(10**9) }}", id="indent-filter"),
        pytest.param("{{ ('x' * 100000) ~ ('x' * 100000) * 9 }}", id="concat"),
        pytest.param("{% for i in range(99999) %}{{ 'y' * 99 }}{% endfor %}", id="big-output"),
        pytest.param("{{ lipsum(10**6) }}", id="lipsum"),
        pytest.param("{{ ''.__class__.__mro__ }}", id="mro"),
    ],
)  # fmt: skip
def test_runaway_templates_fail_fast_with_one_line(tmp_path: Path, extra: str) -> None:
    prompts = _workspace(tmp_path, extra)
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        load_prompts([prompts, BUILTIN])
    assert time.monotonic() - started < 10  # refused, not evaluated (generous on a busy box)
    assert "\n" not in str(info.value) and str(info.value).startswith("template house.j2")


def _link(prompts: Path, name: str, target: str | Path) -> None:
    (prompts / name).unlink(missing_ok=True)
    (prompts / name).symlink_to(target)


@pytest.mark.parametrize(
    "setup",
    ["include-environ", "house-is-environ", "include-outside", "house-is-fifo", "include-abs"],
)
def test_templates_load_only_regular_files_inside_their_folders(tmp_path: Path, setup: str) -> None:
    prompts = _workspace(tmp_path)
    outside = tmp_path / "outside.j2"
    outside.write_text("SECRET-OUTSIDE-TEXT")
    if setup == "include-environ":
        _link(prompts, "env.j2", "/proc/self/environ")
        (prompts / "house.j2").write_text('{% include "env.j2" %}')
    elif setup == "house-is-environ":
        _link(prompts, "house.j2", "/proc/self/environ")
    elif setup == "include-outside":
        _link(prompts, "other.j2", outside)
        (prompts / "house.j2").write_text('{% include "other.j2" %}')
    elif setup == "house-is-fifo":
        (prompts / "house.j2").unlink()
        os.mkfifo(prompts / "house.j2")
    else:
        (prompts / "house.j2").write_text('{% include "../outside.j2" %}')
    with pytest.raises(TemplateError) as info:
        load_prompts([prompts, BUILTIN])
    assert "SECRET" not in str(info.value) and "\n" not in str(info.value)


def test_an_include_inside_the_folder_still_works(tmp_path: Path) -> None:
    prompts = _workspace(tmp_path)
    (prompts / "extra.j2").write_text("House note: be brief.")
    house = (prompts / "house.j2").read_text()
    (prompts / "house.j2").write_text(house + '\n{% include "extra.j2" %}')
    assert "House note: be brief." in load_prompts([prompts, BUILTIN]).house


def test_cli_refuses_a_hostile_template_before_any_request(
    tmp_path: Path, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    prompts = _workspace(tmp_path)
    _link(prompts, "env.j2", "/proc/self/environ")
    (prompts / "house.j2").write_text('{% include "env.j2" %}')
    assert prompt_dirs(tmp_path)[0] == prompts.resolve()
    tool = write_tool(tmp_path / "tools", "Any Tool")
    result = panel(
        "run", str(tool), "--model", "anthropic:claude-sonnet-5", "-p", "skeptic",
        cwd=tmp_path,
        env={"ANTHROPIC_API_KEY": "sk-test-0000000000", "ANTHROPIC_BASE_URL": emulator.base_url},
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("panel: error: template house.j2"), lines
    assert emulator.requests() == []

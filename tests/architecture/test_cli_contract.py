"""The CLI's contract, pinned: every command, its options, and the shape of every `--json`.

`cli_contract.json` beside this file is the record. A change to a command's options or to a
`--json` shape fails here with the difference; when the change is deliberate, regenerate the
record and commit it with the change, so it shows up in review:

    PANEL_UPDATE_CONTRACT=1 .venv/bin/pytest tests/architecture/test_cli_contract.py

Shapes keep keys and value types, not values: a list is the union of its items' shapes, and a
mapping whose keys are data (run ids, persona ids, tool slugs) is pinned by its values' shape
under "<key>".
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
import typer._click.core as click
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from panel.cli import COMMANDS, app, command_app

RECORD = Path(__file__).with_name("cli_contract.json")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tools"
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]+$")
DATA_KEYED = {
    "rubric",
    "by_persona",
    "personas",
    "templates",
    "tools",
    "by_status",
    "by_class",
    "by_check",
}


def _param(p: click.Parameter) -> str:
    """One line per parameter: kind, flags, type, and what is not the usual (flag, required…)."""
    descriptor = getattr(p, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    kind = "option" if isinstance(p, TyperOption) else "argument"
    type_name = (annotation.__name__ if isinstance(annotation, type) else str(annotation)).replace(
        "pathlib.", ""
    )
    words = [kind, "/".join(sorted([*p.opts, *p.secondary_opts])), type_name]
    if isinstance(p, TyperOption) and p.is_flag:
        words.append("flag")
    if p.required:
        words.append("required")
    if p.multiple:
        words.append("multiple")
    if isinstance(p.default, str | int | float | bool):
        words.append(f"= {p.default!r}")
    return " ".join(words)


def _command(cmd: click.Command) -> dict[str, Any]:
    out: dict[str, Any] = {
        "params": {p.name or "?": _param(p) for p in cmd.params if p.name != "help"}
    }
    if isinstance(cmd, TyperGroup):
        ctx = click.Context(cmd)
        out["commands"] = {
            name: _command(sub)
            for name in sorted(cmd.list_commands(ctx))
            if (sub := cmd.get_command(ctx, name)) is not None
        }
    return out


def commands() -> dict[str, Any]:
    return {
        name: _command(typer.main.get_group(command_app(name)).commands[name]) for name in COMMANDS
    }


def shape(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        if key in DATA_KEYED or (value and all(_looks_like_data(k) for k in value)):
            merged: Any = None
            for v in value.values():
                merged = _union(merged, shape(v))
            return {"<key>": merged}
        return {k: shape(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        merged = None
        for item in value:
            merged = _union(merged, shape(item))
        return [merged]
    if value is None:
        return "null"
    return type(value).__name__


def _looks_like_data(k: str) -> bool:
    return k.startswith("sha256:") or "--vs--" in k or bool(RUN_ID.match(k))


def _union(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None or a == b:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _union(a.get(k), b.get(k)) for k in sorted({*a, *b})}
    if isinstance(a, list) and isinstance(b, list):
        return [_union(a[0], b[0])]
    kinds = sorted({*(a if isinstance(a, str) and "|" in a else str(a)).split("|"),
                    *(b if isinstance(b, str) and "|" in b else str(b)).split("|")})  # fmt: skip
    return "|".join(kinds)


def _json(runner: CliRunner, args: list[str], code: int = 0) -> Any:
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == code, (args, result.output, result.stderr)
    return json.loads(result.stdout)


def json_shapes(tmp: Path) -> dict[str, Any]:
    """Walk the editor's path once, --json at every step, and record each output's shape."""
    os.chdir(tmp)
    tools = tmp / "tools"
    tools.mkdir()
    for name in ("cursor.yaml", "github-copilot.yaml"):
        shutil.copy(EXAMPLES / name, tools / name)
    runner = CliRunner()
    base = ["--model", "emulator:claude-sonnet-5", "--latency-scale", "0"]
    first = _json(runner, ["run", "tools", *base, "--json"])
    second = _json(runner, ["run", "tools", *base, "--seed", "2", "--json"])
    record = _json(runner, ["compare", "tools/cursor.yaml", "tools/github-copilot.yaml",
                            "--model", "emulator:claude-sonnet-5", "--json"])  # fmt: skip
    diff = _json(runner, ["diff", first["run_id"], second["run_id"], "--json"])
    lint = _json(runner, ["lint", first["run_id"], "--json"])
    assert diff["changes"], "the two seeds should disagree somewhere"
    published = _json(
        runner, ["publish", record["provenance"]["run_id"], "--json", "--allow-synthetic"]
    )
    personas = _json(runner, ["personas", "list", "--json"])
    (tmp / "batch.yaml").write_text(
        "tools: [tools/*.yaml]\ncomparisons:\n  - [cursor, github-copilot]\n"
        "model: emulator:claude-sonnet-5\n"
    )
    batch = _json(runner, ["batch", "batch.yaml", "--latency-scale", "0", "--json"])
    return {
        "run": shape(first),
        "compare": shape(record),
        "diff": shape(diff),
        "publish": shape(published),
        "batch": shape(batch),
        "personas list": shape(personas),
        "lint": shape(lint),
    }


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each run starts its own in-process emulator, as `panel run` does with no key: the seed
    # is the emulator's, so a second seed gives a diff with changes in it.
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "PANEL_EMULATOR_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(Path.cwd())


@pytest.mark.usefixtures("no_keys")
def test_the_cli_contract_is_pinned(tmp_path: Path) -> None:
    now = {"commands": commands(), "json": json_shapes(tmp_path)}
    text = json.dumps(now, indent=1, sort_keys=True) + "\n"
    if os.environ.get("PANEL_UPDATE_CONTRACT") == "1":
        RECORD.write_text(text)
    assert RECORD.is_file(), "no record yet: run with PANEL_UPDATE_CONTRACT=1"
    pinned = json.loads(RECORD.read_text())
    for part in ("commands", "json"):
        for name in sorted({*pinned[part], *now[part]}):
            assert now[part].get(name) == pinned[part].get(name), (
                f"the {part} contract of `panel {name}` changed; if deliberate, regenerate "
                "with PANEL_UPDATE_CONTRACT=1 (see this file's docstring) and commit it"
            )


def test_the_contract_catches_a_new_option() -> None:
    # The check is not vacuous: an added option changes the pinned form.
    group = typer.main.get_group(command_app("run"))
    before = _command(group.commands["run"])
    extra = copy.copy(group.commands["run"].params[1])
    extra.name, extra.opts = "new_thing", ["--new-thing"]
    group.commands["run"].params.append(extra)
    assert _command(group.commands["run"]) != before

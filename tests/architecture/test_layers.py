"""The layer rules of ARCHITECTURE.md, checked on every import in panel/ (module level,
inside functions and under TYPE_CHECKING alike).

- A stage imports only its own stage and lower ones:
  vocabulary < providers < inputs, store < lint < run < pages < batch < cli.
- Only panel/providers/ imports an SDK or an HTTP client (anthropic, openai, instructor,
  httpx, httpx2).
- Only the emulator itself, providers/select.py and the CLI import panel.emulator; the
  emulator imports nothing of panel's but the vocabulary and the cache-block rules.
- Only the CLI imports rich (display and progress live there).
- YAML is parsed only by panel/inputs/yamlsafe.py (no tags, no aliases, strings stay strings).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "panel"

VOCABULARY = {
    "errors",
    "verdict",
    "runformat",
    "modeltable",
    "tokens",
    "digests",
    "redact",
    "houserules",
    "lintformat",
    "aggregate",
}
RANK = {
    "providers": 1,
    "inputs": 2,
    "store": 2,
    "lint": 3,
    "run": 4,
    "pages": 5,
    "batch": 6,
    "cli": 7,
}
SDKS = {"anthropic", "openai", "instructor", "httpx", "httpx2"}
EMULATOR_MAY_IMPORT = {"panel.providers.cacheblocks"}
EMULATOR_USERS = {"panel.providers.select"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "panel":  # `from panel import x`: x is a stage or a name
                found += [(node.lineno, f"panel.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def stage_of(module: str) -> str:
    """'panel.run.engine' → 'run'; top-level vocabulary → 'vocabulary'; 'panel' → 'api'."""
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    if parts[1] in VOCABULARY or parts[1] in {"__main__", "__version__", "data"}:
        return "vocabulary"
    return parts[1]


def violations(path: Path, imports: list[tuple[int, str]]) -> list[str]:
    me = module_name(path)
    mine = stage_of(me)
    found: list[str] = []
    for line, target in imports:
        where = f"{path.relative_to(ROOT.parent)}:{line}: {me} imports {target}"
        top = target.split(".")[0]
        if top in SDKS and mine != "providers":
            found.append(f"{where} (only panel/providers/ may import an SDK or HTTP client)")
        if top == "yaml" and me != "panel.inputs.yamlsafe":
            found.append(f"{where} (YAML is read only through panel/inputs/yamlsafe.py)")
        if top == "rich" and mine != "cli":
            found.append(f"{where} (only panel/cli/ may import rich)")
        if top != "panel" or me == "panel.__main__":
            continue
        theirs = stage_of(target)
        if theirs == "emulator":
            if mine not in ("emulator", "cli") and me not in EMULATOR_USERS:
                found.append(f"{where} (product code never depends on the emulator)")
            continue
        if mine == "emulator":
            if theirs not in ("vocabulary", "emulator") and target not in EMULATOR_MAY_IMPORT:
                found.append(f"{where} (the emulator uses only the vocabulary and cache blocks)")
            continue
        if theirs == "api" and target != "panel":
            continue  # `from panel import __version__`
        if mine in RANK and theirs in RANK and RANK[theirs] > RANK[mine]:
            found.append(f"{where} ({mine} is below {theirs})")
        if mine == "vocabulary" and theirs not in ("vocabulary", "api"):
            found.append(f"{where} (the vocabulary imports only the vocabulary)")
        if (
            mine != "api"
            and theirs == "api"
            and target == "panel"
            and me != "panel.inputs.workspace"
        ):
            found.append(f"{where} (import the module you need, not the front door)")
    return found


def all_violations() -> list[str]:
    out: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        out += violations(path, imports_of(path))
    return out


def test_the_tree_keeps_its_layers() -> None:
    assert all_violations() == []


def test_every_stage_is_ranked() -> None:
    stages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert stages - {"emulator"} == set(RANK)


@pytest.mark.parametrize(
    ("file", "target", "why"),
    [
        ("store/runs.py", "panel.run.engine", "store is below run"),
        ("pages/diff.py", "anthropic", "only panel/providers/"),
        ("run/planning.py", "panel.emulator.promptcache", "never depends on the emulator"),
        ("inputs/tools.py", "rich.console", "only panel/cli/"),
        ("emulator/state.py", "panel.run.costs", "the emulator uses only"),
        ("providers/anthropic.py", "panel.pages.records", "providers is below pages"),
        ("runformat.py", "panel.store.runs", "the vocabulary imports only"),
        ("pages/publish.py", "yaml", "only through panel/inputs/yamlsafe.py"),
        ("lint/report.py", "panel.run.engine", "lint is below run"),
        ("store/runs.py", "panel.lint.report", "store is below lint"),
    ],
)
def test_a_forbidden_import_is_caught(file: str, target: str, why: str) -> None:
    path = ROOT / file
    bad = violations(path, [*imports_of(path), (9999, target)])
    assert any(why in v and ":9999:" in v for v in bad), bad

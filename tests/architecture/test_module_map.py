"""ARCHITECTURE.md's module map covers every module of panel/, and names none that is gone.

Each stage's row of the map table (the emulator: its own section, "The emulator") must name
every module file of that stage; a module file the map names must exist there. Package
`__init__.py` files are the stages themselves (panel/__init__.py, the public API, is named in
the text), and `__main__.py` only calls the CLI.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PANEL = ROOT / "panel"


def _section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def stage_texts() -> dict[str, str]:
    """Stage ('vocabulary', 'providers', … 'emulator') → what the map says about it."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for line in _section(text, "Module map").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|", 1)]
        if not line.startswith("|") or len(cells) < 2 or cells[0] in ("where", "---"):
            continue
        named = re.search(r"`(\w+)/`", cells[0])
        rows["vocabulary" if "vocabulary" in cells[0] else named.group(1) if named else ""] = cells[
            1
        ]
    rows["emulator"] = rows.get("emulator", "") + _section(text, "The emulator")
    return rows


def stage_of(path: Path) -> str:
    parts = path.relative_to(PANEL).parts
    return "vocabulary" if len(parts) == 1 else parts[0]


def named(text: str) -> set[str]:
    """The module files a map text names (`x.py`, not a path such as tests/conftest.py)."""
    return set(re.findall(r"(?<![\w/.])(\w+\.py)\b", text))


def test_every_module_is_in_the_module_map() -> None:
    texts = stage_texts()
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted(PANEL.rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py")
        and path.name not in named(texts.get(stage_of(path), ""))
    ]
    assert missing == [], f"ARCHITECTURE.md's module map does not name: {missing}"


def test_the_module_map_names_no_module_that_is_gone() -> None:
    stale = [
        f"{stage}: {name}"
        for stage, text in stage_texts().items()
        for name in sorted(named(text))
        if not ((PANEL if stage == "vocabulary" else PANEL / stage) / name).exists()
    ]
    assert stale == [], f"ARCHITECTURE.md's module map names modules that do not exist: {stale}"


def test_every_stage_has_a_row() -> None:
    stages = {p.name for p in PANEL.iterdir() if (p / "__init__.py").exists()}
    assert stages | {"vocabulary"} == set(stage_texts())

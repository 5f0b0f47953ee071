"""Helpers for the run stage's unit specs (the in-process provider double, no HTTP).

A module of its own name, not conftest: with several test folders on sys.path, `from conftest
import` resolves to whichever conftest a worker loaded first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from panel.inputs.personas import load_personas
from panel.inputs.tools import LoadedTool, load_tools
from panel.inputs.workspace import persona_dirs
from panel.providers.base import VerdictRequest
from panel.run.engine import RunOptions
from panel.run.retry import RetryLimits

TOOL = """name: {name}
category: Developer Tools
tagline: A tool for unit specs
pricing: Free
description: |
  {name} indexes a repository and answers questions about it, then proposes edits that a
  developer reviews before merging. It keeps a log of every request for replay.
"""


def make_tools(folder: Path, *names: str) -> list[LoadedTool]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name.lower().replace(' ', '-')}.yaml").write_text(TOOL.format(name=name))
    return load_tools([folder]).tools


def run_options(tmp: Path, personas: Sequence[str], **changes: Any) -> RunOptions:
    base: dict[str, Any] = {
        "personas": list(personas),
        "runs_dir": tmp / "runs",
        "cwd": tmp,
        "concurrency": 4,
        "use_result_cache": False,
        "retry": RetryLimits(base_delay=0.0, max_delay=0.0),
    }
    base.update(changes)
    return RunOptions(**base)


_RUBRIC = {p.id: p.rubric_ids for p in load_personas(persona_dirs(Path("/nonexistent")))}


def verdict_for(request: VerdictRequest, *, ship: bool = True) -> dict[str, Any]:
    """A valid verdict for the request's persona (every rubric question answered)."""
    return {
        "ship": ship,
        "confidence": 0.7,
        "headline": f"A hand-written verdict on {request.tool_slug}",
        "quote": " ".join(["word"] * 80),
        "answers": [
            {"question_id": q, "answer": "An answer."} for q in _RUBRIC[request.persona_id]
        ],
        "strengths": ["fast"],
        "risks": ["young"],
    }

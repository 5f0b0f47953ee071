"""Fixtures for the page tests (data lives in pagedata.py)."""

from __future__ import annotations

import pytest
from pagedata import PERSONAS, make_manifest, make_persona, make_tool, standard_results

from panel.inputs.personas import Persona
from panel.inputs.tools import LoadedTool, ToolLink
from panel.runformat import PairResult, RunManifest


@pytest.fixture
def personas() -> list[Persona]:
    # Deliberately out of order: display order comes from Persona.order.
    return [make_persona(*p) for p in reversed(PERSONAS)]


@pytest.fixture
def tools() -> tuple[LoadedTool, LoadedTool]:
    a = make_tool(
        "ledgerline",
        "Ledgerline Cache API",
        tagline="Pin long prompts server-side and stream tool calls as they form",
        description=(
            "Ledgerline adds explicit prompt caching with measurable hit rates and incremental "
            "tool-call streaming to an inference API.\n\nIt targets teams running agents with "
            "large, stable system prompts."
        ),
        links=[ToolLink(label="Docs", url="https://ledgerline.example/docs")],
    )
    b = make_tool(
        "quorum",
        "Quorum Fusion",
        tagline="Send one prompt to several models and merge the best answer",
        description=(
            "Quorum runs a prompt across a pool of models and asks a judge model to merge them."
        ),
        pricing="Freemium",
        community_votes=1284,
    )
    return a, b


@pytest.fixture
def manifest() -> RunManifest:
    return make_manifest()


@pytest.fixture
def results() -> dict[tuple[str, str], PairResult]:
    return standard_results()

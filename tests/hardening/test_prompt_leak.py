"""Issue 12, item 11: a verdict that recites panel's own prompt is flagged `prompt_leak`.

The threshold (textsafety.PROMPT_LEAK_WORDS = 12 consecutive words of the house block in any
verdict field, or of the persona block in any field but the rubric answers, which may restate
their own question) catches a quote carrying 150 words of the system prompt, and
leaves the emulator's ordinary verdicts on every persona unflagged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from panel.emulator.runner import EmulatorHandle
from panel.inputs.personas import load_personas
from panel.inputs.prompts import load_prompts, render_prompt
from panel.inputs.textsafety import PROMPT_LEAK_FLAG, PROMPT_LEAK_WORDS, prompt_leak_flags
from panel.inputs.workspace import persona_dirs, prompt_dirs
from panel.providers.base import VerdictRequest
from panel.run.attempts import PairState, pair_result
from panel.verdict import RubricAnswer, Verdict, verdict_tool_schema

from .conftest import make_tools, options, run


def _leaky_verdict(text: str, rubric: list[str], where: str) -> Verdict:
    words = text.split()[:150]
    recited = " ".join(words)
    quote = recited if where == "quote" else "An honest paragraph. " * 20
    answers = [
        RubricAnswer(question_id=q, answer=recited if where == "answers" else "Fine.")
        for q in rubric
    ]
    return Verdict(
        ship=True,
        confidence=0.9,
        headline="It ships",
        quote=quote,
        answers=answers,
        strengths=[recited] if where == "strengths" else ["fast"],
        risks=["new"],
    )


@pytest.mark.parametrize(
    ("block", "where"),
    [("house", "quote"), ("house", "answers"), ("house", "strengths"), ("persona", "quote"),
     ("persona", "strengths")],
)  # fmt: skip
def test_reciting_the_prompt_is_flagged(tmp_path: Path, block: str, where: str) -> None:
    tool = make_tools(tmp_path / "tools", "Leaky Tool")[0]
    persona = load_personas(persona_dirs(tmp_path))[0]
    parts = render_prompt(persona, tool, load_prompts(prompt_dirs(tmp_path)))
    request = VerdictRequest(
        tool_slug=tool.slug, persona_id=persona.id, parts=parts, tool_schema=verdict_tool_schema()
    )
    source = parts.house if block == "house" else parts.persona
    state = PairState(request=request, verdict=_leaky_verdict(source, persona.rubric_ids, where))
    result = pair_result(
        tool, persona.id, state, error=None, cost_usd=None, pair_key="k", synthetic=True,
        model="emulator:claude-sonnet-5", finished_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    assert result.status == "ok" and PROMPT_LEAK_FLAG in result.flags


def test_the_threshold_is_twelve_consecutive_words() -> None:
    prompt = "one two three four five six seven eight nine ten eleven twelve thirteen"
    eleven = " ".join(prompt.split()[:11])
    twelve = " ".join(prompt.split()[:12])
    assert PROMPT_LEAK_WORDS == 12
    assert prompt_leak_flags({"quote": f"so {eleven} and"}, [prompt]) == []
    assert prompt_leak_flags({"quote": f"SO {twelve.upper()}!"}, [prompt]) == [PROMPT_LEAK_FLAG]


async def test_ordinary_verdicts_are_not_flagged(tmp_path: Path, emulator: EmulatorHandle) -> None:
    tools = make_tools(tmp_path / "tools", "Alpha Tool", "Beta Tool", "Gamma Tool")
    personas = [p.id for p in load_personas(persona_dirs(tmp_path))]
    outcome = await run(tools, options(tmp_path, emulator, personas=personas))
    assert len(outcome.results) == 3 * len(personas)
    assert all(r.status == "ok" for r in outcome.results)
    assert [r.flags for r in outcome.results if PROMPT_LEAK_FLAG in r.flags] == []

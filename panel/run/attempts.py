"""One pair's attempts: the state carried between them, and how the next request changes
after the fault the last one hit (F14 more room, F16 a re-ask with the validation error,
F17 a reminder to call the tool; otherwise the same request again).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from panel.errors import ErrorClass, UpstreamError
from panel.inputs.prompts import tool_view
from panel.inputs.textsafety import injection_flags, prompt_leak_flags
from panel.inputs.tools import LoadedTool
from panel.providers.base import Reask, VerdictRequest
from panel.redact import redact_secrets
from panel.runformat import PairResult, Usage
from panel.verdict import Verdict, VerdictProblem


def untrusted_text(tool: LoadedTool) -> str:
    """Every untrusted field, as written and as the model saw it (markers defused).

    A payload can be split across name, tagline and description, and a verdict that obeyed a
    fake delimiter quotes the defused form, so the post-check compares against both.
    """
    spec, view = tool.spec, tool_view(tool.spec)
    raw = [spec.name, spec.category, spec.tagline, spec.description]
    seen = [view.name, view.category, view.tagline, view.description]
    return "\n".join(raw + [s for s, r in zip(seen, raw, strict=True) if s != r])


@dataclass
class PairState:
    request: VerdictRequest
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    verdict: Verdict | None = None
    last_error: UpstreamError | None = None
    reask: Reask | None = None  # the follow-up an invalid verdict earned

    def prepare_next(self) -> None:
        """Adjust the request for the fault the last attempt hit (F14–F17)."""
        err = self.last_error
        if err is None:
            return
        base = _without_reask(self.request)
        if err.error_class is ErrorClass.TRUNCATED_MAX_TOKENS:
            self.request = _replace(base, max_tokens=base.max_tokens * 2)
        elif err.error_class is ErrorClass.SCHEMA_INVALID:
            self.request = _replace(base, reask=self.reask)
        elif err.error_class is ErrorClass.NO_TOOL_CALL:
            self.request = _replace(
                base,
                reask=Reask(
                    kind="no_tool_call",
                    message="Record your verdict by calling the record_verdict tool now; "
                    "do not answer in text.",
                    previous_text=err.raw_text or "",
                ),
            )
        else:
            self.request = base


def _without_reask(request: VerdictRequest) -> VerdictRequest:
    return _replace(request, reask=None) if request.reask else request


def _replace(request: VerdictRequest, **changes: Any) -> VerdictRequest:
    return dataclasses.replace(request, **changes)


def validation_message(exc: ValidationError | VerdictProblem) -> str:
    if isinstance(exc, VerdictProblem):
        return "; ".join(exc.problems)
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "(root)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def pair_result(
    tool: LoadedTool,
    persona: str,
    state: PairState,
    *,
    error: UpstreamError | None,
    cost_usd: float | None,
    pair_key: str,
    synthetic: bool,
    model: str,
    finished_at: str,
    canaries: Sequence[str] = (),
    sample: int = 0,
) -> PairResult:
    """The terminal line for a pair: its verdict (post-checked for injection) or its error."""
    common: dict[str, Any] = {
        "tool": tool.spec.name,
        "tool_slug": tool.slug,
        "persona": persona,
        "usage": state.usage,
        "cost_usd": cost_usd,
        "attempts": state.attempts,
        "pair_key": pair_key,
        "synthetic": synthetic,
        "model": model,
        "finished_at": finished_at,
        "sample": sample,
    }
    if error is not None:
        refused = error.error_class is ErrorClass.REFUSED
        return PairResult(
            status="refused" if refused else "failed",
            error_class=error.error_class.value,
            error=error.message,
            **common,
        )
    v = state.verdict
    assert v is not None
    fields = {"headline": v.headline, "quote": v.quote, "answers": [a.answer for a in v.answers]}
    clean = redact_secrets  # whatever the upstream wrote, the key it was sent is not kept
    return PairResult(
        status="ok",
        ship=v.ship,
        confidence=v.confidence,
        headline=clean(v.headline),
        quote=clean(v.quote),
        rubric={a.question_id: clean(a.answer) for a in v.answers},
        strengths=[clean(s) for s in v.strengths],
        risks=[clean(r) for r in v.risks],
        flags=injection_flags(fields, untrusted_text(tool), canaries)
        + _leak_flags(v, state.request),
        **common,
    )


def _leak_flags(v: Verdict, request: VerdictRequest) -> list[str]:
    """Prompt leakage: any field against the house block; all but the rubric answers against
    the persona block (an answer may fairly restate its own rubric question)."""
    prose = {"headline": v.headline, "quote": v.quote, "strengths": v.strengths, "risks": v.risks}
    answers = [a.answer for a in v.answers]
    return prompt_leak_flags({**prose, "answers": answers}, [request.parts.house]) or (
        prompt_leak_flags(prose, [request.parts.persona])
    )

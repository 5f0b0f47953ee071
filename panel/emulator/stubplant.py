"""The "plant" behaviour: verdicts that break the house rules on purpose, so the lint shows.

Emulator-only, like `echo` and `obey`, and as synthetic as every stub verdict. Starting from
the normal verdict, a seeded plan decides per (seed, persona, tool) what to plant:

- an unverified figure (one the tool's description does not state) in the quote, the headline
  or a rubric answer;
- a word the house rules ban (panel.houserules.BANNED_WORDS) in the quote;
- the tool's tagline, read back in the quote;
- a heading, a bullet or an emoji in the quote;
- a headline far past the word limit;
- a rubric answer that only restates its question;
- a copied quote: per persona, by seed alone, the quote is either the tool's shared quote
  (every persona with that role writes the same one on a tool) or the persona's template
  (the same words for every tool, only the name swapped in), or its own.

The plan depends only on the seed, the persona id, the tool name and what the prompt says
(rubric ids, tool text), never on the request's bytes, so copies match across requests and a
test can compute what was planted (`plan_for`) and check the lint finds each of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from panel.emulator.stubprose import lens_of, paragraph, seeded
from panel.houserules import BANNED_WORDS, HEADLINE_MAX_WORDS

Copy = Literal["tool", "persona"]
Formatting = Literal["heading", "bullet", "emoji"]
FigureField = Literal["quote", "headline", "answer"]

PLANT_RATE = 0.45  # each per-verdict plant, independently
# Figures an honest review could not take from a description that does not state them.
FIGURES = (
    "$49 per month",
    "37%",
    "4.2M requests a day",
    "version 9.3",
    "2031-05-17",
    "640 GB",
    "12,000 customers",
    "99.97% uptime",
)
MARKETING = (*(b.word for b in BANNED_WORDS), "seamlessly", "unlocks", "supercharges")
LONG_HEADLINE = (
    "Synthetic planted headline that keeps going well past the house limit on headline "
    "words for this review"
)
_TAGLINE = re.compile(r"^[ \t]*tagline:[ \t]*(.*?)[ \t]*\r?$", re.MULTILINE)
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Plan:
    """What one (persona, tool) verdict carries under the plant behaviour."""

    figure: str | None = None
    figure_field: FigureField = "quote"
    marketing: str | None = None
    tagline: str | None = None  # the tagline as the tool block states it
    formatting: Formatting | None = None
    long_headline: bool = False
    restated: str | None = None  # the question id whose answer restates the question
    copy: Copy | None = None


def copy_role(seed: int, persona_id: str | None) -> Copy | None:
    """Per persona and seed: writes the tool's shared quote, its own template, or its own."""
    draw = seeded("plant-copy", seed, persona_id).random()
    return "tool" if draw < 0.4 else "persona" if draw < 0.8 else None


def tagline_of(untrusted: str) -> str | None:
    m = _TAGLINE.search(untrusted)
    return m.group(1) if m and m.group(1) else None


def plan_for(
    seed: int,
    persona_id: str | None,
    tool_name: str | None,
    question_ids: Sequence[str],
    untrusted: str,
) -> Plan:
    """The plan for one verdict: deterministic in its arguments."""

    def chosen(kind: str) -> bool:
        return seeded("plant", seed, persona_id, tool_name, kind).random() < PLANT_RATE

    rng = seeded("plant-what", seed, persona_id, tool_name)
    stated = set(_DIGITS.findall(untrusted))
    figures = [f for f in FIGURES if not set(_DIGITS.findall(f)) & stated] or list(FIGURES)
    tagline = tagline_of(untrusted)
    fields: list[FigureField] = ["quote", "headline", "answer"] if question_ids else ["quote"]
    formats: list[Formatting] = ["heading", "bullet", "emoji"]
    return Plan(
        figure=rng.choice(figures) if chosen("figure") else None,
        figure_field=rng.choice(fields),
        marketing=rng.choice(MARKETING) if chosen("marketing") else None,
        tagline=tagline if tagline and chosen("tagline") else None,
        formatting=rng.choice(formats) if chosen("formatting") else None,
        long_headline=chosen("headline"),
        restated=rng.choice(list(question_ids)) if question_ids and chosen("restate") else None,
        copy=copy_role(seed, persona_id),
    )


def _copied_quote(seed: int, copy: Copy, persona_id: str | None, tool: str) -> str:
    if copy == "tool":  # the same words from every persona with this role, on this tool
        rng, lens = seeded("plant-tool", seed, tool), 0
        who = ("a stand-in reviewer", tool)
    else:  # the same words from this persona on every tool, the name swapped in
        rng, lens = seeded("plant-template", seed, persona_id), lens_of(persona_id)
        who = (persona_id or "the reviewer", "\x00")
    lead = "Synthetic verdict (emulator, planted copy):"
    return paragraph(rng, lens, who, lead, (60, 200), target=110).replace("\x00", tool)


def plant(
    value: dict[str, Any],
    persona_id: str | None,
    tool_name: str | None,
    untrusted: str,
    questions: Sequence[tuple[str, str]],
    *,
    seed: int,
) -> dict[str, Any]:
    """The normal verdict `value` with the plan for (seed, persona, tool) planted in it."""
    tool = tool_name or "the tool"
    plan = plan_for(seed, persona_id, tool_name, [q for q, _ in questions], untrusted)
    out = dict(value)
    quote = str(out.get("quote", ""))
    if plan.copy is not None:
        quote = _copied_quote(seed, plan.copy, persona_id, tool)
    extra: list[str] = []
    if plan.figure and plan.figure_field == "quote":
        extra.append(f"Planted claim: it serves {plan.figure}.")
    if plan.marketing:
        extra.append(f"Planted hype: {plan.marketing}.")
    if plan.tagline:
        extra.append(f'Planted echo: "{plan.tagline}".')
    quote = " ".join([quote, *extra])
    if plan.formatting == "heading":
        quote = "## Planted heading\n" + quote
    elif plan.formatting == "bullet":
        quote += "\n- planted bullet point"
    elif plan.formatting == "emoji":
        quote += " \N{ROCKET}"
    out["quote"] = quote
    headline = str(out.get("headline", ""))
    if plan.long_headline:
        headline = LONG_HEADLINE
    if plan.figure and plan.figure_field == "headline":
        room = HEADLINE_MAX_WORDS - len(plan.figure.split()) - 1  # stays short unless planted
        words = headline.split() if plan.long_headline else headline.split()[:room]
        headline = " ".join([*words, "at", plan.figure])
    out["headline"] = headline
    answers = [dict(a) for a in out.get("answers", []) if isinstance(a, dict)]
    asked = dict(questions)
    others = [i for i, a in enumerate(answers) if a.get("question_id") != plan.restated]
    for i, a in enumerate(answers):
        qid = a.get("question_id")
        if qid == plan.restated and qid in asked:
            answers[i]["answer"] = asked[qid]
        elif plan.figure and plan.figure_field == "answer" and others and i == others[-1]:
            answers[i]["answer"] = f"{a.get('answer', '')} Planted claim: {plan.figure}."
    if answers:
        out["answers"] = answers
    return out


__all__ = ["FIGURES", "MARKETING", "Plan", "copy_role", "plan_for", "plant", "tagline_of"]

"""What the distinctness threshold separates: word 3-gram Jaccard of honest vs copied quotes.

    .venv/bin/python bench/lint_similarity.py [--seeds 5] [--pages ../shared/seeds]

Prints, for the emulator's normal verdicts on every example tool × persona (in process, no
server; several seeds): the highest and mean similarity between two personas' quotes on one
tool, and between one persona's quotes on two tools. Then the same for the plant behaviour's
copied quotes (the lowest, which the threshold must stay under), and, when a folder of
reference pages is given, for the model-written scorecard quotes in it (quoted “…”). The
threshold in panel.lintformat.LintRules sits between the honest maximum and the copied
minimum; docs/lint.md records a run of this script. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
from pathlib import Path

from panel.emulator.stubmodel import extract_context, generate_tool_input
from panel.emulator.stubplant import copy_role
from panel.inputs.personas import load_personas
from panel.inputs.prompts import load_prompts, render_prompt
from panel.inputs.tools import load_tools
from panel.lint.similarity import jaccard, shingles
from panel.lintformat import LintRules
from panel.verdict import verdict_tool_schema

REPO = Path(__file__).resolve().parents[1]


def quotes(seed: int, behaviour: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(tool name, persona id) -> (quote, tool name) for every example tool × persona."""
    prompts = load_prompts([REPO / "prompts"])
    personas = load_personas([REPO / "personas"])
    tools = load_tools([REPO / "examples" / "tools"]).tools
    out = {}
    for tool, persona in itertools.product(tools, personas):
        parts = render_prompt(persona, tool, prompts)
        ctx = extract_context([parts.house, parts.persona, parts.tool])
        value = generate_tool_input(
            verdict_tool_schema(),
            ctx,
            seed=seed,
            request_digest=f"{tool.slug}/{persona.id}",  # one request per pair, as on the wire
            behaviour=behaviour,
        )
        out[(tool.spec.name, persona.id)] = (str(value["quote"]), tool.spec.name)
    return out


def pairs(found: dict[tuple[str, str], tuple[str, str]]) -> tuple[list[float], list[float]]:
    """Similarities across personas on one tool, and across tools for one persona."""
    sets = {k: shingles(q, name) for k, (q, name) in found.items()}
    tools = sorted({t for t, _ in found})
    personas = sorted({p for _, p in found})
    across_personas = [
        jaccard(sets[(t, a)], sets[(t, b)])
        for t in tools
        for a, b in itertools.combinations(personas, 2)
    ]
    across_tools = [
        jaccard(sets[(a, p)], sets[(b, p)])
        for p in personas
        for a, b in itertools.combinations(tools, 2)
    ]
    return across_personas, across_tools


def show(label: str, values: list[float]) -> None:
    print(
        f"  {label:<38} n={len(values):>5}  max {max(values):.3f}  "
        f"mean {statistics.fmean(values):.3f}  min {min(values):.3f}"
    )


def page_quotes(folder: Path) -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))]
    found = [q.strip() for t in texts for q in re.findall(r"“([^”]{200,})”", t)]
    return list(dict.fromkeys(found))  # a verdict repeated across pages counts once


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pages", type=Path, default=REPO.parent / "shared" / "seeds")
    args = parser.parse_args()
    rules = LintRules()
    print(f"thresholds: similar_quotes {rules.similar_quotes}, repeated {rules.repeated_quote}")
    honest_p: list[float] = []
    honest_t: list[float] = []
    copied: list[float] = []
    for seed in range(args.seeds):
        p, t = pairs(quotes(seed, "normal"))
        honest_p += p
        honest_t += t
        planted = quotes(seed, "plant")
        sets = {k: shingles(q, name) for k, (q, name) in planted.items()}
        personas = sorted({p for _, p in planted})
        tools = sorted({t for t, _ in planted})
        role = {p: copy_role(seed, p) for p in personas}
        sharing = [p for p in personas if role[p] == "tool"]
        copied += [
            jaccard(sets[(t, a)], sets[(t, b)])
            for t in tools
            for a, b in itertools.combinations(sharing, 2)
        ]
        copied += [
            jaccard(sets[(a, p)], sets[(b, p)])
            for p in personas
            if role[p] == "persona"
            for a, b in itertools.combinations(tools, 2)
        ]
    print(f"emulator, normal behaviour, seeds 0-{args.seeds - 1}:")
    show("two personas, one tool", honest_p)
    show("one persona, two tools", honest_t)
    print("emulator, plant behaviour (copied quotes with plants added):")
    show("copies", copied)
    if args.pages.is_dir():
        found = page_quotes(args.pages)
        if len(found) >= 2:
            sims = [jaccard(shingles(a), shingles(b)) for a, b in itertools.combinations(found, 2)]
            print(f"model-written scorecard quotes in {args.pages} ({len(found)} quotes):")
            show("any two quotes", sims)


if __name__ == "__main__":
    main()

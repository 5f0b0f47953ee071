"""Distinctness: quotes too alike across personas on one tool, or across tools for one persona.

The measure is the Jaccard similarity of word 3-gram sets (|A ∩ B| / |A ∪ B|): words are
lower-cased with punctuation dropped, and the tool's own name is replaced by one placeholder
word first, so a template that only swaps the name in is still a match. Quotes at or above
the threshold are linked, and each group of linked quotes is one finding (docs/lint.md gives
the threshold and what was measured to choose it).

Pairs are found by prefix filtering (an exact similarity join): every quote's rarest
3-grams form its prefix, and two quotes at or above the threshold always share a prefix
3-gram, so only quotes that do are compared. A batch of thousands of tools is not a quadratic
walk over all pairs, and no pair above the threshold is missed.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from panel.lint.verdicts import words_of
from panel.lintformat import LintRules, PairRef, RunFinding
from panel.runformat import PairResult

TOOL_PLACEHOLDER = "\x00tool"
Shingle = tuple[str, ...]


def shingles(quote: str, tool_name: str = "", n: int = 3) -> frozenset[Shingle]:
    """The quote's word n-grams, with the tool's name masked."""
    words = words_of(quote)
    name = words_of(tool_name)
    if name:
        masked: list[str] = []
        i = 0
        while i < len(words):
            if words[i : i + len(name)] == name:
                masked.append(TOOL_PLACEHOLDER)
                i += len(name)
            else:
                masked.append(words[i])
                i += 1
        words = masked
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[Shingle], b: frozenset[Shingle]) -> float:
    if not a and not b:
        return 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


@dataclass(frozen=True)
class Group:
    members: list[Hashable]  # in the order the items were given
    value: float  # the highest similarity between two members


def similar_groups(
    items: Sequence[tuple[Hashable, frozenset[Shingle]]], threshold: float
) -> list[Group]:
    """Groups of items linked by a similarity at or above `threshold` (exact, prefix-filtered)."""
    sets = [s for _, s in items]
    freq = Counter(g for s in sets for g in s)
    rank = {g: (count, g) for g, count in freq.items()}
    index: dict[Shingle, list[int]] = defaultdict(list)
    candidates: set[tuple[int, int]] = set()
    for i, s in enumerate(sets):
        if not s:
            continue
        ordered = sorted(s, key=rank.__getitem__)
        prefix = len(ordered) - math.ceil(threshold * len(ordered)) + 1
        for g in ordered[: max(1, prefix)]:
            candidates.update((j, i) for j in index[g])
            index[g].append(i)
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best: dict[int, float] = {}
    links: list[tuple[int, int, float]] = []
    for i, j in sorted(candidates):
        value = jaccard(sets[i], sets[j])
        if value >= threshold:
            links.append((i, j, value))
            parent[root(i)] = root(j)
    for i, _, value in links:
        r = root(i)
        best[r] = max(best.get(r, 0.0), value)
    groups: dict[int, list[Hashable]] = {}  # insertion order: by each group's first member
    for i, (key, _) in enumerate(items):
        if root(i) in best:
            groups.setdefault(root(i), []).append(key)
    return [Group(keys, best[r]) for r, keys in groups.items()]


def distinctness(results: Sequence[PairResult], rules: LintRules) -> list[RunFinding]:
    """similar_quotes (per tool, across personas) and repeated_quote (per persona, across tools)."""
    quoted = [r for r in results if r.status == "ok" and r.quote]
    names = {r.tool_slug: r.tool for r in quoted}
    sets = {
        PairRef(tool=r.tool_slug, persona=r.persona): shingles(
            r.quote or "", r.tool, rules.shingle_words
        )
        for r in quoted
    }
    by_tool: dict[str, list[PairRef]] = defaultdict(list)
    by_persona: dict[str, list[PairRef]] = defaultdict(list)
    for ref in sets:
        by_tool[ref.tool].append(ref)
        by_persona[ref.persona].append(ref)
    out: list[RunFinding] = []
    for check, groups, threshold in (
        ("similar_quotes", by_tool, rules.similar_quotes),
        ("repeated_quote", by_persona, rules.repeated_quote),
    ):
        for key, refs in groups.items():
            for group in similar_groups([(ref, sets[ref]) for ref in refs], threshold):
                pairs = [ref for ref in group.members if isinstance(ref, PairRef)]
                if check == "similar_quotes":
                    who = " and ".join(ref.persona for ref in pairs)
                    what = f"{who} wrote nearly the same quote on {names[key]}"
                else:
                    tools = ", ".join(names[ref.tool] for ref in pairs)
                    what = f"{key} wrote nearly the same quote for {tools}"
                out.append(
                    RunFinding(
                        check="similar_quotes" if check == "similar_quotes" else "repeated_quote",
                        tool=key if check == "similar_quotes" else None,
                        persona=key if check == "repeated_quote" else None,
                        pairs=pairs,
                        value=round(group.value, 3),
                        threshold=threshold,
                        message=f"{what} (word 3-gram Jaccard {group.value:.2f} ≥ {threshold})"
                        + (": a template, not a review" if check == "repeated_quote" else ""),
                    )
                )
    return out


__all__ = ["Group", "distinctness", "jaccard", "shingles", "similar_groups"]

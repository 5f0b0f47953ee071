"""Distinctness and calibration on hand-written verdicts: what is reported, and the minimums."""

from __future__ import annotations

import itertools
import random

from lintdata import GOOD_QUOTE, result

from panel.lint.calibration import auc, calibrate, mann_whitney_p
from panel.lint.similarity import distinctness, jaccard, shingles, similar_groups
from panel.lintformat import LintRules

RULES = LintRules()
# Honest, different quotes (synthetic, written for these tests).
OTHERS = {
    "skeptic": (
        "Against a self-hosted prefix cache the question is who pays when the cache misses: "
        "the description promises cheap reads but says little about eviction, and the first "
        "incident will be an agent that silently pays full price for every turn. I would hold "
        "until the eviction rules are written down and a team has run it under load."
    ),
    "futurist": (
        "This bets that agent contexts stay long and stable, so the marginal token is mostly "
        "a reread. If that holds, prompt caching turns from an optimisation into the default "
        "billing model, and every orchestration layer will have to expose breakpoints or lose "
        "to the ones that do. It is on time: agents already resend their context every turn."
    ),
}


def test_the_measure_masks_the_tool_name() -> None:
    a = shingles("Ledgerline keeps the cache warm for agents that resend context", "Ledgerline")
    b = shingles("Quorum keeps the cache warm for agents that resend context", "Quorum")
    assert jaccard(a, b) == 1.0
    assert jaccard(shingles(GOOD_QUOTE), shingles(OTHERS["skeptic"])) < 0.05


def test_honest_quotes_raise_nothing() -> None:
    results = [result(persona="builder")] + [result(persona=p, quote=q) for p, q in OTHERS.items()]
    assert distinctness(results, RULES) == []


def test_two_personas_copying_one_quote_on_a_tool_are_reported() -> None:
    edited = GOOD_QUOTE.replace("I would ship it for agent loops.", "I would hold for now.")
    results = [
        result(persona="builder"),
        result(persona="skeptic", quote=edited, ship=False),
        result(persona="futurist", quote=OTHERS["futurist"]),
    ]
    [found] = distinctness(results, RULES)
    assert found.check == "similar_quotes" and found.tool == "ledgerline"
    assert [(p.tool, p.persona) for p in found.pairs] == [
        ("ledgerline", "builder"),
        ("ledgerline", "skeptic"),
    ]
    assert found.value >= RULES.similar_quotes


def test_one_persona_writing_a_template_for_two_tools_is_reported() -> None:
    template = GOOD_QUOTE.replace("Ledgerline", "Quorum")
    results = [
        result(persona="builder"),
        result(persona="builder", tool="Quorum", slug="quorum", quote=template),
        result(persona="skeptic", tool="Quorum", slug="quorum", quote=OTHERS["skeptic"]),
    ]
    [found] = distinctness(results, RULES)
    assert found.check == "repeated_quote" and found.persona == "builder"
    assert {p.tool for p in found.pairs} == {"ledgerline", "quorum"}


def test_the_prefix_filtered_join_finds_exactly_what_all_pairs_would() -> None:
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(60)]
    base = [" ".join(rng.choice(vocab) for _ in range(40)) for _ in range(6)]
    texts = []
    for i in range(40):  # near-copies of a few bases, and random ones
        words = (base[i % 6] if i % 3 else " ".join(rng.choice(vocab) for _ in range(40))).split()
        for _ in range(rng.randrange(12)):
            words[rng.randrange(len(words))] = rng.choice(vocab)
        texts.append(" ".join(words))
    items = [(i, shingles(t)) for i, t in enumerate(texts)]
    for threshold in (0.3, 0.5, 0.7):
        linked = {
            frozenset((i, j))
            for (i, a), (j, b) in itertools.combinations(items, 2)
            if jaccard(a, b) >= threshold
        }
        grouped = similar_groups(items, threshold)
        members = {m for g in grouped for m in g.members}
        assert members == {i for pair in linked for i in pair}
        assert any(len(g.members) > 2 for g in grouped) or threshold > 0.5


def verdicts(persona: str, ships: list[bool], **kw) -> list:  # type: ignore[no-untyped-def]
    return [
        result(persona=persona, slug=f"t{i}", tool=f"Tool {i}", ship=s, **kw)
        for i, s in enumerate(ships)
    ]


def test_a_persona_that_always_ships_is_reported_above_the_minimum_only() -> None:
    conf = {"confidence": 0.8}
    table, found, notes = calibrate(verdicts("builder", [True] * 4), RULES)
    assert found == [] and "at least 10" in notes[0]  # a four-tool run: no noise findings
    assert table[0].ship_rate == 1.0 and table[0].verdicts == 4
    many = [
        r.model_copy(update={"confidence": 0.5 + 0.03 * i})
        for i, r in enumerate(verdicts("builder", [True] * 12, **conf))
    ]
    _, found, _ = calibrate(many, RULES)
    assert [f.check for f in found] == ["ship_rate"] and "nearly always" in found[0].message
    _, found, _ = calibrate([r.model_copy(update={"ship": False}) for r in many], RULES)
    assert [f.check for f in found] == ["ship_rate"] and "nearly never" in found[0].message
    mixed = [r.model_copy(update={"ship": i % 3 != 0}) for i, r in enumerate(many)]
    assert calibrate(mixed, RULES)[1] == []


def test_a_flat_confidence_is_reported() -> None:
    ships = [i % 2 == 0 for i in range(12)]
    _, found, _ = calibrate(verdicts("skeptic", ships, confidence=0.7), RULES)
    assert [f.check for f in found] == ["confidence_flat"]


def test_quote_length_that_predicts_the_vote_is_reported() -> None:
    short = " ".join(GOOD_QUOTE.split()[:70])
    rows = []
    for i in range(12):
        ship = i % 2 == 0
        quote = GOOD_QUOTE + " " + " ".join(["more"] * (20 + i)) if ship else short
        rows.append(
            result(persona="futurist", slug=f"t{i}", tool=f"Tool {i}", ship=ship,
                   confidence=0.5 + 0.03 * i, quote=quote)
        )  # fmt: skip
    table, found, _ = calibrate(rows, RULES)
    assert [f.check for f in found] == ["length_predicts_vote"]
    assert table[0].length_vote_auc == 1.0 and (table[0].length_vote_p or 1) < 0.01
    honest = [r.model_copy(update={"quote": GOOD_QUOTE}) for r in rows]
    assert calibrate(honest, RULES)[1] == []


def test_agreement_with_the_panel_and_the_confidence_auc() -> None:
    rows = []
    for i in range(8):
        others_ship = True
        agrees = i < 5
        rows += [
            result(persona=p, slug=f"t{i}", tool=f"Tool {i}", ship=others_ship)
            for p in ("skeptic", "futurist")
        ]
        rows.append(
            result(persona="builder", slug=f"t{i}", tool=f"Tool {i}", ship=agrees,
                   confidence=0.9 if agrees else 0.55)
        )  # fmt: skip
    table, _, _ = calibrate(rows, RULES)
    builder = next(c for c in table if c.persona == "builder")
    assert builder.compared == 8 and builder.agreement_rate == 0.625
    assert builder.confidence_agreement_auc == 1.0  # confident exactly when it agrees


def test_the_statistics() -> None:
    assert auc([3, 4], [1, 2]) == 1.0 and auc([1], [1]) == 0.5 and auc([], [1]) is None
    p = mann_whitney_p([10, 11, 12, 13, 14], [1, 2, 3, 4, 5])
    assert p is not None and p < 0.02
    assert mann_whitney_p([1, 2, 3], [1, 2, 3]) == 1.0

"""The maths behind samples and juries (panel/aggregate.py), checked against hand computations."""

from __future__ import annotations

import math

import pytest

from panel.aggregate import (
    aggregate_pair,
    fleiss_kappa,
    flip_stability,
    jury_agreement,
    majority_ship_probability,
    mean_pairwise_agreement,
    persona_flip_rates,
    poisson_binomial,
    resampled_ship_probability,
    tool_stability,
    wilson_interval,
)
from panel.runformat import PairResult

SONNET, LUNA, HAIKU = (
    "emulator:claude-sonnet-5",
    "emulator:gpt-5.6-luna",
    "emulator:claude-haiku-4-5",
)


def draw(
    ship: bool | None,
    *,
    sample: int = 0,
    model: str = SONNET,
    persona: str = "builder",
    tool: str = "alpha",
    confidence: float = 0.7,
    status: str = "ok",
) -> PairResult:
    return PairResult(
        tool=tool.title(),
        tool_slug=tool,
        persona=persona,
        status=status,  # type: ignore[arg-type]
        ship=ship if status == "ok" else None,
        confidence=confidence if status == "ok" else None,
        headline=f"{model} sample {sample}" if status == "ok" else None,
        pair_key=f"sha256:{tool}{persona}{model}{sample}",
        synthetic=True,
        model=model,
        finished_at="2026-12-01T00:00:00Z",
        sample=sample,
    )


def samples(*ships: bool, model: str = SONNET, persona: str = "builder", tool: str = "alpha"):
    return [draw(s, sample=k, model=model, persona=persona, tool=tool) for k, s in enumerate(ships)]


# -- Wilson -----------------------------------------------------------------------------------


def test_wilson_interval_matches_the_hand_computation() -> None:
    # 4 of 5, z = 1.959964: p = 0.8, z² = 3.841459, denominator 1 + z²/n = 1.768292,
    # centre (0.8 + 0.384146) / 1.768292 = 0.669657, half z·√(0.032 + 0.038415) / 1.768292
    # = 0.294120 → (0.375537, 0.963777).
    lo, hi = wilson_interval(4, 5)
    assert lo == pytest.approx(0.375537, abs=1e-5)
    assert hi == pytest.approx(0.963777, abs=1e-5)
    # 5 of 5: centre 1.384146 / 1.768292 = 0.782759, half 0.384146 / 1.768292 = 0.217241.
    lo, hi = wilson_interval(5, 5)
    assert lo == pytest.approx(0.565518, abs=1e-5) and hi == pytest.approx(1.0)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


# -- Fleiss' kappa ----------------------------------------------------------------------------


def test_fleiss_kappa_of_a_small_jury_by_hand() -> None:
    # Three models, four pairs (ship, not ship): 3-0, 2-1, 0-3, 2-1.
    # P_i = (Σ n_ij² − 3) / 6: 1, 1/3, 1, 1/3 → P̄ = 2/3.
    # p_ship = 7/12, p_not = 5/12 → P_e = 49/144 + 25/144 = 37/72.
    # κ = (2/3 − 37/72) / (1 − 37/72) = (11/72) / (35/72) = 11/35.
    table = [[3, 0], [2, 1], [0, 3], [2, 1]]
    assert mean_pairwise_agreement(table) == pytest.approx(2 / 3)
    assert fleiss_kappa(table) == pytest.approx(11 / 35)


def test_fleiss_kappa_of_the_published_worked_example() -> None:
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories.
    # P̄ = 0.378, P_e = 0.2128, κ = 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert mean_pairwise_agreement(table) == pytest.approx(0.378, abs=5e-4)
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_is_undefined_when_every_vote_is_alike_and_refuses_ragged_tables() -> None:
    assert fleiss_kappa([[3, 0], [3, 0]]) is None  # chance agreement is 1
    assert fleiss_kappa([]) is None
    with pytest.raises(ValueError):
        fleiss_kappa([[3, 0], [2, 0]])


# -- the bootstrap ----------------------------------------------------------------------------


def test_resampled_majority_is_the_binomial_tail() -> None:
    # 4 of 5 ship: P(Bin(5, 0.8) >= 3) = 10·0.8³·0.2² + 5·0.8⁴·0.2 + 0.8⁵ = 0.94208.
    assert resampled_ship_probability(5, 4) == pytest.approx(0.94208)
    # 2 of 3: P(Bin(3, 2/3) >= 2) = 3·(4/9)·(1/3) + 8/27 = 20/27.
    assert resampled_ship_probability(3, 2) == pytest.approx(20 / 27)
    # A tie is not ship: 1 of 2 → P(both resampled draws ship) = 1/4.
    assert resampled_ship_probability(2, 1) == pytest.approx(0.25)
    assert majority_ship_probability([1.0, 0.0]) == 0.0  # 1–1: not a majority
    assert sum(poisson_binomial([0.3, 0.6, 0.9])) == pytest.approx(1.0)


# -- one pair ---------------------------------------------------------------------------------


def test_a_pair_s_verdict_is_the_majority_with_its_agreement_flip_rate_and_stability() -> None:
    v = aggregate_pair(samples(True, True, False, True, True))
    assert (v.ship, v.agreement, v.of, v.votes, v.ship_votes) == (True, 4, 5, 5, 4)
    assert v.flip_rate == pytest.approx(0.2)
    assert v.keep_probability == pytest.approx(0.94208)
    assert v.stable is False  # 0.942 < 0.95: a 4–1 split of five is not stable
    unanimous = aggregate_pair(samples(False, False, False))
    assert (unanimous.ship, unanimous.stable, unanimous.flip_rate) == (False, True, 0.0)


def test_a_tie_is_not_ship_and_is_unstable() -> None:
    v = aggregate_pair(samples(True, False))
    assert v.ship is False and v.agreement == 1 and v.of == 2
    assert v.keep_probability == pytest.approx(0.75) and v.stable is False


def test_one_draw_is_unmeasured_and_quotes_itself() -> None:
    only = draw(True)
    v = aggregate_pair([only])
    assert v.stable is None and v.keep_probability == 1.0 and v.shown == only


def test_the_quote_is_the_majority_s_most_confident_then_the_earliest_sample() -> None:
    ds = [
        draw(True, sample=0, confidence=0.6),
        draw(False, sample=1, confidence=0.99),  # the minority's confidence does not count
        draw(True, sample=2, confidence=0.8),
        draw(True, sample=3, confidence=0.8),
    ]
    assert aggregate_pair(ds).shown.sample == 2


def test_failed_and_declined_draws_do_not_vote() -> None:
    ds = [draw(True), draw(None, sample=1, status="failed"), draw(False, sample=2)]
    v = aggregate_pair(ds)
    assert (v.draws, v.votes, v.ship) == (3, 2, False)  # 1–1 of the votes: a tie
    declined = aggregate_pair([draw(None, status="refused"), draw(None, sample=1, status="failed")])
    assert declined.status == "refused" and declined.ship is None and declined.shown.sample == 0


def test_a_jury_s_verdict_is_the_majority_of_its_models_own_majorities() -> None:
    ds = [
        *samples(True, True, False, model=SONNET),  # sonnet: ship 2–1
        *samples(False, False, False, model=LUNA),  # luna: not ship
        *samples(True, True, True, model=HAIKU),  # haiku: ship
    ]
    v = aggregate_pair(ds, [SONNET, LUNA, HAIKU])
    assert (v.ship, v.agreement, v.of) == (True, 2, 3)  # "Ship · 2 of 3 models"
    assert [m.ship for m in v.models] == [True, False, True]
    assert v.flip_rate == pytest.approx(1 / 9)  # sonnet's one dissenting sample
    assert v.shown.model in (SONNET, HAIKU) and v.shown.ship is True
    # Resampled, sonnet ships with 20/27, the others are certain: the jury keeps ship when
    # sonnet does (haiku ship, luna not): 20/27.
    assert v.keep_probability == pytest.approx(20 / 27, abs=1e-6)


# -- tools and juries --------------------------------------------------------------------------


def test_the_ship_pct_interval_is_the_exact_bootstrap_by_hand() -> None:
    # builder, skeptic unanimous ship; futurist 4 of 5 ship (0.94208); business unanimous not.
    # Ship count = 2 + Bernoulli(0.94208): P(2) = 0.05792 >= 2.5% → low 50%; high 75%.
    vs = [
        aggregate_pair(samples(True, True, True, True, True, persona="builder")),
        aggregate_pair(samples(True, True, True, True, True, persona="skeptic")),
        aggregate_pair(samples(True, True, False, True, True, persona="futurist")),
        aggregate_pair(samples(False, False, False, False, False, persona="business")),
    ]
    st = tool_stability("alpha", vs)
    assert (st.ship_pct, st.interval, st.stable, st.measured) == (75, (50, 75), 3, 4)
    once = tool_stability("alpha", [aggregate_pair([draw(True)])])
    assert once.interval is None and once.measured == 0  # nothing sampled: no interval


def test_persona_flip_rates_pool_their_pairs() -> None:
    vs = [
        aggregate_pair(samples(True, False, True, tool="alpha")),
        aggregate_pair(samples(True, True, True, tool="beta")),
    ]
    assert persona_flip_rates(vs) == {"builder": pytest.approx(1 / 6)}


def test_jury_agreement_names_the_model_that_dissents_most() -> None:
    verdicts = []
    for i, (s, l_, h) in enumerate([(1, 1, 1), (1, 0, 1), (0, 0, 0), (1, 0, 1)]):
        ds = [
            draw(bool(s), model=SONNET, tool=f"t{i}"),
            draw(bool(l_), model=LUNA, tool=f"t{i}"),
            draw(bool(h), model=HAIKU, tool=f"t{i}"),
        ]
        verdicts.append(aggregate_pair(ds, [SONNET, LUNA, HAIKU]))
    a = jury_agreement(verdicts, [SONNET, LUNA, HAIKU])
    assert (a.pairs, a.unanimous, a.dissents_most) == (4, 2, LUNA)
    assert a.dissent == {SONNET: 0.0, LUNA: 0.5, HAIKU: 0.0}
    # Table 3-0, 2-1, 0-3, 2-1 as in the hand computation above.
    assert a.fleiss_kappa == pytest.approx(11 / 35)
    assert a.percent_agreement == pytest.approx(2 / 3)


def test_a_pair_some_model_could_not_judge_is_left_out_of_fleiss() -> None:
    ds = [draw(True, model=SONNET), draw(None, model=LUNA, status="failed")]
    a = jury_agreement([aggregate_pair(ds, [SONNET, LUNA])], [SONNET, LUNA])
    assert a.pairs == 0 and a.fleiss_kappa is None and a.dissents_most is None


def test_flip_stability_marks_noise_apart_from_real_changes() -> None:
    assert flip_stability(True, True) == "stable"
    assert flip_stability(False, True) == "unstable"
    assert flip_stability(True, False) == "unstable"
    assert flip_stability(None, True) == "unmeasured"
    assert flip_stability(None, None) == "unmeasured"


def test_stability_threshold_in_numbers() -> None:
    # Seven samples, six agree: P(Bin(7, 6/7) >= 4) ≈ 0.99: stable. Five, four agree: not.
    assert aggregate_pair(samples(*([True] * 6 + [False]))).stable is True
    assert aggregate_pair(samples(True, True, True, True, False)).stable is False
    assert math.isclose(resampled_ship_probability(7, 6), 0.9906, abs_tol=1e-3)

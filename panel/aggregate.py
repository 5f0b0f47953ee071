"""Verdicts over draws: a pair's majority, agreement, flip rate and stability; the interval of
a tool's ship %; a jury's agreement (percent agreement, Fleiss' kappa, who dissents most).

A run with `--samples K` or `--jury A,B,C` records several draws per (tool, persona) pair (one
line per model × sample, `runformat.DrawId`). Everything an editor reads about a pair is
computed here, by pure functions over those lines, so the run report, the records, the pages,
the diff and the publish gate all agree. The rules (ARCHITECTURE.md, "Samples and juries"):

- **Votes.** A draw votes when its status is ok (ship or not ship); failed and declined draws
  do not vote (they are listed, as today).
- **Majority.** A model's verdict on a pair is the majority of its votes; the pair's verdict is
  the majority of its models' verdicts (one model: that model's). A tie is not a majority for
  ship: the verdict is not ship (the house rule: ship has to be earned).
- **Agreement.** One model: the votes on the verdict's side ("4 of 5 samples"). A jury: the
  models on the verdict's side, of those with a verdict ("2 of 3 models").
- **Flip rate.** The share of votes that differ from their own model's majority: sampling
  variation only (a jury's dissent is reported apart, by `jury_agreement`).
- **Keep probability** (an exact bootstrap over samples): resample each model's votes with
  replacement, as many as it has, and recompute the pair's verdict; the probability that it
  stays what it is. Computed exactly (binomial and Poisson-binomial sums), so it needs no
  random numbers and is the same on every machine.
- **Stable** when the keep probability is at least 0.95 (`STABLE_AT`): with 3 or 5 samples only
  a unanimous pair is stable, with 7 a 6–1 split is too. Unmeasured (None) when no model has two
  votes (one draw says nothing about the next).
- **Shown draw.** The page quotes one draw: among the draws that vote with the verdict, from
  models whose own verdict is the pair's, the most confident; ties go to the earlier sample,
  then the earlier model in jury order.
- **Ship % interval.** The same bootstrap, one level up: each persona's verdict is ship with its
  resampled probability, independently; the tool's ship % then has an exact distribution, and
  the interval is its central 95% (2.5th to 97.5th percentile, in the units the page prints).
  Chosen over a Wilson interval on the pooled votes because it is an interval for the very
  figure the page publishes (ship % of personas by majority), in its own steps (25% for four
  personas), and answers the editor's question directly: what could a rerun publish?
  `wilson_interval` is kept for a single pair's vote share (`PairVerdict.ship_share_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from panel.runformat import PairId, PairResult

STABLE_AT = 0.95  # keep probability at or above which a pair is "stable"
INTERVAL = 0.95  # central mass of the ship % interval
_Z95 = 1.959963984540054  # the normal quantile for a 95% Wilson interval
_EPS = 1e-12


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelVerdict(_Frozen):
    """One model's verdict on a pair: the majority of its samples."""

    model: str
    draws: int  # lines recorded for this model on the pair
    votes: int  # draws with a verdict
    ship_votes: int
    ship: bool | None  # None when none of its draws gave a verdict
    agreement: int  # votes on its majority's side


class Sampling(_Frozen):
    """How a pair's verdict came out of its draws: what records, pages and reports show."""

    draws: int
    votes: int  # draws with a verdict
    ship_votes: int
    agreement: int  # samples (one model) or models (a jury) on the verdict's side ...
    of: int  # ... of this many
    unit: Literal["samples", "models"]
    flip_rate: float | None  # votes against their own model's majority, over votes
    stable: bool | None  # a rerun keeps the verdict with probability >= 0.95 (None: unmeasured)
    keep_probability: float | None
    quoted_model: str  # who wrote the quote shown (the majority's most confident draw)
    quoted_sample: int
    models: list[ModelVerdict] = Field(default_factory=list)  # every model's own verdict

    def label(self) -> str:
        """ "4 of 5 samples" / "2 of 3 models": how many agree with the verdict."""
        unit = self.unit if self.of != 1 else self.unit.removesuffix("s")
        return f"{self.agreement} of {self.of} {unit}"


class PairVerdict(_Frozen):
    """A (tool, persona) pair's verdict over all its draws."""

    tool_slug: str
    persona: str
    status: str  # "ok" when any draw voted; else "refused" if any declined, else "failed"
    ship: bool | None
    draws: int
    votes: int
    ship_votes: int
    agreement: int  # samples (one model) or models (a jury) on the verdict's side
    of: int  # ... out of this many votes (one model) or models with a verdict (a jury)
    flip_rate: float | None  # minority votes within each model / votes; None without votes
    keep_probability: float | None  # bootstrap: the verdict survives a rerun
    stable: bool | None  # keep_probability >= STABLE_AT; None when unmeasured
    shown: PairResult  # the draw a page quotes
    models: list[ModelVerdict] = Field(default_factory=list)
    all_draws: list[PairResult] = Field(default_factory=list)  # in jury order, then sample

    @property
    def jury(self) -> bool:
        return len(self.models) > 1

    @property
    def ship_probability(self) -> float | None:
        """Bootstrap probability that a rerun's verdict is ship."""
        if self.keep_probability is None or self.ship is None:
            return None
        return self.keep_probability if self.ship else 1.0 - self.keep_probability

    def sampling(self) -> Sampling:
        return Sampling(
            draws=self.draws,
            votes=self.votes,
            ship_votes=self.ship_votes,
            agreement=self.agreement,
            of=self.of,
            unit="models" if self.jury else "samples",
            flip_rate=None if self.flip_rate is None else round(self.flip_rate, 4),
            stable=self.stable,
            keep_probability=self.keep_probability,
            quoted_model=self.shown.model,
            quoted_sample=self.shown.sample,
            models=self.models,
        )

    @property
    def ship_share_interval(self) -> tuple[float, float] | None:
        """Wilson 95% interval of the share of ship votes across the pair's draws."""
        return wilson_interval(self.ship_votes, self.votes) if self.votes else None


class ToolStability(_Frozen):
    """A tool's ship % with its bootstrap interval and how many of its personas are stable."""

    tool_slug: str
    ship_votes: int
    verdicts: int  # personas with a verdict
    ship_pct: int | None
    interval: tuple[int, int] | None  # ship % low, high; None when nothing was sampled
    stable: int  # personas whose verdict is stable
    measured: int  # personas whose stability is known (sampled at least twice)


class JuryAgreement(_Frozen):
    """How much a jury's models agree over a run's pairs."""

    models: list[str]
    pairs: int  # pairs on which every model gave a verdict (Fleiss' subjects)
    unanimous: int  # of those, pairs on which every model voted alike
    percent_agreement: float | None  # mean pairwise agreement (Fleiss' P-bar), 0..1
    fleiss_kappa: float | None  # None when undefined (every vote in one category, or no pairs)
    dissent: dict[str, float]  # model -> share of those pairs where it differs from the jury
    dissents_most: str | None  # the model with the highest dissent (None when nobody dissents)


# -- small exact maths ------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% by default)."""
    if n <= 0:
        raise ValueError("a Wilson interval needs at least one trial")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def poisson_binomial(probabilities: Sequence[float]) -> list[float]:
    """P(exactly k successes), k = 0..n, for independent trials with these probabilities."""
    dist = [1.0]
    for p in probabilities:
        nxt = [0.0] * (len(dist) + 1)
        for k, mass in enumerate(dist):
            nxt[k] += mass * (1 - p)
            nxt[k + 1] += mass * p
        dist = nxt
    return dist


def majority_ship_probability(probabilities: Sequence[float]) -> float:
    """P(strictly more than half of the trials say ship); a tie is not ship."""
    dist = poisson_binomial(probabilities)
    half = len(probabilities) / 2
    return sum(mass for k, mass in enumerate(dist) if k > half)


def resampled_ship_probability(votes: int, ship_votes: int) -> float:
    """Bootstrap: P(the majority of `votes` draws resampled from these votes is ship)."""
    if votes <= 0:
        raise ValueError("no votes to resample")
    return majority_ship_probability([ship_votes / votes] * votes)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa for N subjects (rows) rated by n raters into categories (columns).

    Every row must sum to the same n >= 2. None when undefined: no subjects, or every rating
    in one category (chance agreement is then 1).
    """
    if not table:
        return None
    n = sum(table[0])
    if n < 2 or any(sum(row) != n for row in table):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per subject")
    subjects = len(table)
    categories = len(table[0])
    p_j = [sum(row[j] for row in table) / (subjects * n) for j in range(categories)]
    p_i = [(sum(c * c for c in row) - n) / (n * (n - 1)) for row in table]
    p_bar = sum(p_i) / subjects
    p_e = sum(p * p for p in p_j)
    if p_e >= 1 - _EPS:
        return None
    return (p_bar - p_e) / (1 - p_e)


def mean_pairwise_agreement(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' P-bar: over subjects, the share of rater pairs that agree (0..1)."""
    if not table:
        return None
    n = sum(table[0])
    if n < 2:
        return None
    return sum((sum(c * c for c in row) - n) / (n * (n - 1)) for row in table) / len(table)


# -- pairs --------------------------------------------------------------------------------------


def _votes(draws: Iterable[PairResult]) -> list[PairResult]:
    return [d for d in draws if d.status == "ok" and d.ship is not None]


def _majority(ship_votes: int, votes: int) -> bool:
    return ship_votes * 2 > votes  # a tie is not a majority for ship


def model_verdict(model: str, draws: Sequence[PairResult]) -> ModelVerdict:
    voting = _votes(draws)
    ships = sum(1 for d in voting if d.ship)
    ship = _majority(ships, len(voting)) if voting else None
    agree = (ships if ship else len(voting) - ships) if voting else 0
    return ModelVerdict(
        model=model,
        draws=len(draws),
        votes=len(voting),
        ship_votes=ships,
        ship=ship,
        agreement=agree,
    )


def aggregate_pair(draws: Sequence[PairResult], models: Sequence[str] = ()) -> PairVerdict:
    """The pair's verdict over its draws; `models` gives jury order (default: first seen)."""
    if not draws:
        raise ValueError("a pair needs at least one draw")
    order = list(dict.fromkeys([*models, *(d.model for d in draws)]))
    by_model = {
        m: sorted((d for d in draws if d.model == m), key=lambda d: d.sample) for m in order
    }
    verdicts = [model_verdict(m, ds) for m, ds in by_model.items() if ds]
    ordered = [d for ds in by_model.values() for d in ds]
    voted = [v for v in verdicts if v.ship is not None]
    first = draws[0]
    votes = sum(v.votes for v in verdicts)
    ship_votes = sum(v.ship_votes for v in verdicts)
    if not voted:
        status = "refused" if any(d.status == "refused" for d in draws) else "failed"
        shown = next(d for m in order for d in by_model[m] if d.status == status)
        return PairVerdict(
            tool_slug=first.tool_slug,
            persona=first.persona,
            status=status,
            ship=None,
            draws=len(draws),
            votes=0,
            ship_votes=0,
            agreement=0,
            of=0,
            flip_rate=None,
            keep_probability=None,
            stable=None,
            shown=shown,
            models=verdicts,
            all_draws=ordered,
        )
    model_ships = sum(1 for v in voted if v.ship)
    ship = _majority(model_ships, len(voted))
    if len(verdicts) > 1:  # a jury: agreement between models
        agreement, of = (model_ships if ship else len(voted) - model_ships), len(voted)
    else:
        agreement, of = voted[0].agreement, voted[0].votes
    minority = sum(v.votes - v.agreement for v in voted)
    q = majority_ship_probability(
        [resampled_ship_probability(v.votes, v.ship_votes) for v in voted]
    )
    keep = q if ship else 1.0 - q
    measured = any(v.votes >= 2 for v in voted)
    siding = {v.model for v in voted if v.ship == ship}
    rank = {m: i for i, m in enumerate(order)}
    candidates = [d for d in _votes(draws) if d.ship == ship and d.model in siding]
    shown = min(
        candidates,
        key=lambda d: (-(d.confidence or 0.0), d.sample, rank[d.model]),
    )
    return PairVerdict(
        tool_slug=first.tool_slug,
        persona=first.persona,
        status="ok",
        ship=ship,
        draws=len(draws),
        votes=votes,
        ship_votes=ship_votes,
        agreement=agreement,
        of=of,
        flip_rate=minority / votes,
        keep_probability=round(keep, 6),
        stable=(keep >= STABLE_AT - _EPS) if measured else None,
        shown=shown,
        models=verdicts,
        all_draws=ordered,
    )


def aggregate_pairs(
    draws: Iterable[PairResult], models: Sequence[str] = ()
) -> dict[PairId, PairVerdict]:
    """Every pair's verdict, in the order pairs first appear."""
    grouped: dict[PairId, list[PairResult]] = {}
    for d in draws:
        grouped.setdefault((d.tool_slug, d.persona), []).append(d)
    return {pair: aggregate_pair(ds, models) for pair, ds in grouped.items()}


def shown_results(verdicts: Mapping[PairId, PairVerdict]) -> dict[PairId, PairResult]:
    """The draw each pair's page quotes: with one draw per pair, the results themselves."""
    return {pair: v.shown for pair, v in verdicts.items()}


# -- tools --------------------------------------------------------------------------------------


def ship_pct_of(ship_votes: int, verdicts: int) -> int | None:
    """Panel ship %: ship verdicts over personas with a verdict; None when none gave one."""
    return None if verdicts == 0 else round(100 * ship_votes / verdicts)


def tool_stability(tool_slug: str, verdicts: Sequence[PairVerdict]) -> ToolStability:
    """A tool's ship % over its personas' verdicts, the bootstrap interval, stable count."""
    voted = [v for v in verdicts if v.ship is not None]
    ships = sum(1 for v in voted if v.ship)
    sampled = any(v.stable is not None for v in voted)
    interval: tuple[int, int] | None = None
    if voted and sampled:
        dist = poisson_binomial([v.ship_probability or 0.0 for v in voted])
        low_tail, high_tail = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
        cdf, lo, hi = 0.0, None, None
        for k, mass in enumerate(dist):
            cdf += mass
            if lo is None and cdf >= low_tail - _EPS:
                lo = k
            if hi is None and cdf >= high_tail - _EPS:
                hi = k
        assert lo is not None and hi is not None
        interval = (round(100 * lo / len(voted)), round(100 * hi / len(voted)))
    return ToolStability(
        tool_slug=tool_slug,
        ship_votes=ships,
        verdicts=len(voted),
        ship_pct=ship_pct_of(ships, len(voted)),
        interval=interval,
        stable=sum(1 for v in voted if v.stable),
        measured=sum(1 for v in voted if v.stable is not None),
    )


def persona_flip_rates(verdicts: Iterable[PairVerdict]) -> dict[str, float]:
    """Per persona: minority votes over votes, across its pairs (sampling variation)."""
    minority: dict[str, int] = {}
    votes: dict[str, int] = {}
    for v in verdicts:
        if v.votes and v.flip_rate is not None:
            minority[v.persona] = minority.get(v.persona, 0) + round(v.flip_rate * v.votes)
            votes[v.persona] = votes.get(v.persona, 0) + v.votes
    return {p: minority[p] / votes[p] for p in votes}


# -- flips ---------------------------------------------------------------------------------------


def flip_stability(before: bool | None, after: bool | None) -> str:
    """How much a flip between two verdicts of a pair means (`panel diff`, the publish gate),
    from each side's `stable` (PairVerdict.stable; None: drawn once).

    "unstable": either side's samples disagree — the flip may be sampling noise, and a rerun
    could flip it back; "stable": both sides were sampled and are stable — the verdict really
    changed (an input, the model, or the world); "unmeasured": otherwise (a side drawn once
    says nothing about its own noise).
    """
    if before is False or after is False:
        return "unstable"
    if before is True and after is True:
        return "stable"
    return "unmeasured"


# -- juries -------------------------------------------------------------------------------------


def jury_agreement(verdicts: Iterable[PairVerdict], models: Sequence[str]) -> JuryAgreement:
    """Agreement between a jury's models over every pair they all gave a verdict on.

    Subjects are the pairs; raters the models (each model's verdict is its samples' majority);
    categories ship / not ship. Pairs where some model has no verdict are left out (Fleiss'
    kappa needs the same raters on every subject). `dissents_most` is the model with the
    highest dissent (on a tie, the earlier in jury order), None when no model ever dissents.
    """
    table: list[list[int]] = []
    differs = dict.fromkeys(models, 0)
    unanimous = 0
    for v in verdicts:
        own = {m.model: m.ship for m in v.models}
        if any(own.get(m) is None for m in models):
            continue
        ships = sum(1 for m in models if own[m])
        table.append([ships, len(models) - ships])
        unanimous += ships in (0, len(models))
        for m in models:
            differs[m] += own[m] != v.ship
    subjects = len(table)
    dissent = {m: (differs[m] / subjects if subjects else 0.0) for m in models}
    worst = max(models, key=lambda m: (dissent[m], -list(models).index(m)), default=None)
    return JuryAgreement(
        models=list(models),
        pairs=subjects,
        unanimous=unanimous,
        percent_agreement=mean_pairwise_agreement(table),
        fleiss_kappa=fleiss_kappa(table) if len(models) >= 2 else None,
        dissent=dissent,
        dissents_most=worst if worst is not None and dissent[worst] > 0 else None,
    )


__all__ = [
    "INTERVAL",
    "STABLE_AT",
    "JuryAgreement",
    "ModelVerdict",
    "PairVerdict",
    "Sampling",
    "ToolStability",
    "aggregate_pair",
    "aggregate_pairs",
    "fleiss_kappa",
    "flip_stability",
    "jury_agreement",
    "majority_ship_probability",
    "mean_pairwise_agreement",
    "model_verdict",
    "persona_flip_rates",
    "poisson_binomial",
    "resampled_ship_probability",
    "ship_pct_of",
    "shown_results",
    "tool_stability",
    "wilson_interval",
]

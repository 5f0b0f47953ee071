"""Calibration across a run: per persona, its votes, its confidence, and what predicts them.

The house rules: a reviewer who approves everything carries no information; confidence uses
the whole range. Reported per persona (PersonaCalibration): ship rate, confidence mean,
spread and range, agreement with the rest of the panel and whether confidence predicts it
(an AUC), and whether quote length predicts the vote (an AUC and a Mann-Whitney p-value).
Findings, only above documented minimum counts so a four-tool run raises no noise
(LintRules, docs/lint.md): ships nearly always or nearly never; a flat confidence; quote
length that separates ship from not-ship votes.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence

from panel.lintformat import LintRules, PersonaCalibration, RunFinding
from panel.runformat import PairResult


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(a positive scores above a negative), ties counting half; None if a side is empty."""
    if not positives or not negatives:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test: normal approximation with tie and
    continuity corrections. None if a side is empty."""
    area = auc(a, b)
    if area is None:
        return None
    n1, n2 = len(a), len(b)
    total = n1 + n2
    ties = sum(t**3 - t for t in Counter([*a, *b]).values())
    variance = n1 * n2 / 12 * ((total + 1) - ties / (total * (total - 1)))
    if variance <= 0:
        return 1.0
    z = max(0.0, abs(area * n1 * n2 - n1 * n2 / 2) - 0.5) / math.sqrt(variance)
    return math.erfc(z / math.sqrt(2))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _panel_majority(results: Sequence[PairResult]) -> dict[tuple[str, str], bool]:
    """For each verdict, the majority vote of the other personas on its tool (no tie)."""
    by_tool: dict[str, list[PairResult]] = defaultdict(list)
    for r in results:
        by_tool[r.tool_slug].append(r)
    out: dict[tuple[str, str], bool] = {}
    for slug, verdicts in by_tool.items():
        for r in verdicts:
            others = [o.ship for o in verdicts if o.persona != r.persona]
            yes, no = others.count(True), others.count(False)
            if yes != no:
                out[(slug, r.persona)] = yes > no
    return out


def calibrate(
    results: Sequence[PairResult], rules: LintRules
) -> tuple[list[PersonaCalibration], list[RunFinding], list[str]]:
    """Per-persona calibration, the findings it raises, and notes on checks below minimums."""
    voted = [r for r in results if r.status == "ok" and r.ship is not None]
    majority = _panel_majority(voted)
    by_persona: dict[str, list[PairResult]] = defaultdict(list)
    for r in voted:
        by_persona[r.persona].append(r)
    table: list[PersonaCalibration] = []
    findings: list[RunFinding] = []
    small: list[str] = []
    for persona, mine in by_persona.items():
        n = len(mine)
        ships = sum(1 for r in mine if r.ship)
        conf = [r.confidence for r in mine if r.confidence is not None]
        agree: list[float] = []
        disagree: list[float] = []
        for r in mine:
            panel = majority.get((r.tool_slug, persona))
            if panel is not None and r.confidence is not None:
                (agree if r.ship == panel else disagree).append(r.confidence)
        compared = len(agree) + len(disagree)
        lengths: dict[bool, list[float]] = {True: [], False: []}
        for r in mine:
            lengths[bool(r.ship)].append(float(len((r.quote or "").split())))
        enough = min(len(agree), len(disagree)) >= rules.agreement_min_each
        both = min(len(lengths[True]), len(lengths[False])) >= rules.length_min_each
        length_auc = auc(lengths[True], lengths[False]) if both else None
        length_p = mann_whitney_p(lengths[True], lengths[False]) if both else None
        sd = statistics.pstdev(conf) if len(conf) >= 2 else None
        table.append(
            PersonaCalibration(
                persona=persona,
                verdicts=n,
                ships=ships,
                ship_rate=_round(ships / n),
                confidence_mean=_round(statistics.fmean(conf)) if conf else None,
                confidence_sd=_round(sd),
                confidence_min=min(conf) if conf else None,
                confidence_max=max(conf) if conf else None,
                compared=compared,
                agreement_rate=_round(len(agree) / compared) if compared else None,
                confidence_agreement_auc=_round(auc(agree, disagree)) if enough else None,
                length_vote_auc=_round(length_auc),
                length_vote_p=_round(length_p),
            )
        )
        if n < rules.calibration_min_verdicts:
            small.append(f"{persona} ({n})")
            continue
        rate = ships / n
        if rate >= rules.ship_rate_high or rate <= rules.ship_rate_low:
            how = "nearly always" if rate >= rules.ship_rate_high else "nearly never"
            findings.append(
                RunFinding(
                    check="ship_rate",
                    persona=persona,
                    value=round(rate, 4),
                    threshold=rules.ship_rate_high
                    if rate >= rules.ship_rate_high
                    else rules.ship_rate_low,
                    message=f"{persona} ships {how}: {ships} of {n} verdicts; a reviewer who "
                    "approves everything (or nothing) carries no information",
                )
            )
        if sd is not None and sd < rules.confidence_sd_min:
            findings.append(
                RunFinding(
                    check="confidence_flat",
                    persona=persona,
                    value=round(sd, 4),
                    threshold=rules.confidence_sd_min,
                    message=f"{persona}'s confidence barely moves (spread {sd:.3f} over {n} "
                    "verdicts); the house rules ask for the whole range",
                )
            )
        if (
            length_auc is not None
            and length_p is not None
            and length_p <= rules.length_p_max
            and abs(length_auc - 0.5) >= rules.length_auc_margin
        ):
            longer = "ship" if length_auc > 0.5 else "not-ship"
            findings.append(
                RunFinding(
                    check="length_predicts_vote",
                    persona=persona,
                    value=round(length_auc, 4),
                    threshold=rules.length_p_max,
                    message=f"{persona}'s quote length predicts its vote: its {longer} quotes "
                    f"are longer (AUC {length_auc:.2f}, Mann-Whitney p {length_p:.4f})",
                )
            )
    notes = []
    if small:
        notes.append(
            "calibration: ship-rate, confidence and length findings need at least "
            f"{rules.calibration_min_verdicts} verdicts per persona; below that: "
            + ", ".join(small)
        )
    return table, findings, notes


__all__ = ["auc", "calibrate", "mann_whitney_p"]

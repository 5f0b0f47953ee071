"""What the lint against the house rules writes: per-verdict findings and runs/<id>/lint.json.

Vocabulary, because both the run format (a result carries its findings: `PairResult.lint`)
and the lint stage (`panel.lint`) need it. schemas/lint-report.schema.json is generated from
LintReport; docs/lint.md states every check, measure and threshold.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LINT_FORMAT = 1

# Checks on one verdict, against the tool's description and the persona's rubric.
VerdictCheck = Literal[
    "unverified_figure",  # a number, price, percentage, date, version or size not in the evidence
    "marketing_word",  # a word the house rules ban (panel.houserules.BANNED_WORDS)
    "tagline",  # the tool's tagline read back
    "formatting",  # a heading, bullet or emoji inside the quote
    "quote_length",  # the quote outside its word bounds
    "headline_length",  # the headline at fifteen words or more
    "answer_restates_question",  # a rubric answer that only restates its question
    "answer_missing",  # a rubric question with no (or an empty) answer
]
# Checks across the verdicts of a run or a results file.
RunCheck = Literal[
    "similar_quotes",  # two personas' quotes on one tool too alike
    "repeated_quote",  # one persona's quotes on two tools too alike (a template, not a review)
    "ship_rate",  # a persona that ships nearly always or nearly never
    "confidence_flat",  # a persona that does not use its confidence range
    "length_predicts_vote",  # a persona whose quote length separates its ship and not-ship votes
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LintFinding(_Frozen):
    """One house rule one verdict broke. Stored with the result (`PairResult.lint`)."""

    check: VerdictCheck
    field: str  # "quote", "headline", "answers.<question id>"
    text: str  # what was written (the figure, the word, the line), at most 200 characters
    message: str


class PairRef(_Frozen):
    tool: str  # tool slug
    persona: str


class RunFinding(_Frozen):
    """One finding about several verdicts: distinctness, or one persona's calibration."""

    check: RunCheck
    tool: str | None = None  # tool slug, for similar_quotes
    persona: str | None = None  # persona id, for repeated_quote and the calibration checks
    pairs: list[PairRef] = Field(default_factory=list)  # the verdicts it is about
    value: float  # what was measured (a similarity, a rate, a spread, an AUC)
    threshold: float  # the rule's threshold (docs/lint.md)
    message: str


class VerdictLint(_Frozen):
    """The findings on one verdict (only verdicts with findings are listed)."""

    tool: str  # tool slug
    tool_name: str
    persona: str
    findings: list[LintFinding]


class PersonaCalibration(_Frozen):
    """One persona across the run: what it votes and how its confidence behaves."""

    persona: str
    verdicts: int  # ok verdicts
    ships: int
    ship_rate: float | None
    confidence_mean: float | None
    confidence_sd: float | None  # population standard deviation
    confidence_min: float | None
    confidence_max: float | None
    # Agreement with the panel: this persona's vote against the majority of the other
    # personas on the same tool (ties and tools without another verdict are left out).
    compared: int
    agreement_rate: float | None
    # P(confidence of an agreeing vote > that of a disagreeing one); 0.5 = confidence says
    # nothing about agreement. None below the minimum counts.
    confidence_agreement_auc: float | None
    # P(a ship quote is longer than a not-ship quote), and its two-sided Mann-Whitney p-value.
    length_vote_auc: float | None
    length_vote_p: float | None


class LintRules(_Frozen):
    """The measures' parameters and thresholds, written into every report (docs/lint.md)."""

    shingle_words: int = 3  # quotes compare as sets of word 3-grams
    similar_quotes: float = 0.5  # Jaccard at or above: too alike (across personas, one tool)
    repeated_quote: float = 0.5  # Jaccard at or above: a template (one persona, two tools)
    restates_question: float = 0.8  # share of the answer's content words found in the question
    calibration_min_verdicts: int = 10  # per persona, before ship-rate or spread findings
    ship_rate_high: float = 0.95  # at or above: ships nearly always
    ship_rate_low: float = 0.05  # at or below: ships nearly never
    confidence_sd_min: float = 0.03  # below: the persona does not use its confidence range
    length_min_each: int = 5  # ship and not-ship verdicts each, before the length test
    length_p_max: float = 0.01  # Mann-Whitney p at or below (and AUC outside 0.2-0.8): flagged
    length_auc_margin: float = 0.3  # |AUC - 0.5| at or above, with the p-value above
    agreement_min_each: int = 3  # agreeing and disagreeing votes each, before the AUC


class LintCounts(_Frozen):
    findings: int  # every finding, per-verdict and run-level
    verdicts_with_findings: int
    by_check: dict[str, int] = Field(default_factory=dict)


class LintReport(_Frozen):
    """runs/<run-id>/lint.json, and `panel lint --json`."""

    format: int = LINT_FORMAT
    run_id: str | None  # None for a results file linted from elsewhere
    synthetic: bool  # any verdict written by the emulator
    verdicts_checked: int  # ok verdicts
    counts: LintCounts
    verdicts: list[VerdictLint] = Field(default_factory=list)
    run: list[RunFinding] = Field(default_factory=list)
    calibration: list[PersonaCalibration] = Field(default_factory=list)
    rules: LintRules = Field(default_factory=LintRules)
    notes: list[str] = Field(default_factory=list)  # e.g. why a check did not run


__all__ = [
    "LINT_FORMAT",
    "LintCounts",
    "LintFinding",
    "LintReport",
    "LintRules",
    "PairRef",
    "PersonaCalibration",
    "RunCheck",
    "RunFinding",
    "VerdictCheck",
    "VerdictLint",
]

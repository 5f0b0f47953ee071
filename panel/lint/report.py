"""One lint report for a set of verdicts: per-verdict findings, distinctness, calibration.

Pure: it takes the results and what they are checked against (tool specs by slug, rubric
questions by persona) and returns a LintReport. `lint_results` checks every verdict afresh;
`stored_report` takes the per-verdict findings each result carries (written when it was
recorded) and adds the run-level checks, which need nothing but the results; it is what the
diff and the publish gate read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from panel.inputs.tools import ToolSpec
from panel.lint.calibration import calibrate
from panel.lint.similarity import distinctness
from panel.lint.verdicts import Evidence, lint_result
from panel.lintformat import (
    LintCounts,
    LintFinding,
    LintReport,
    LintRules,
    RunFinding,
    VerdictLint,
)
from panel.runformat import PairId, PairResult

Rubric = Mapping[str, str]  # question id -> question


def lint_results(
    results: Sequence[PairResult],
    tools: Mapping[str, ToolSpec],
    rubrics: Mapping[str, Rubric],
    *,
    run_id: str | None = None,
    rules: LintRules | None = None,
    notes: Iterable[str] = (),
) -> LintReport:
    """Check every verdict against its tool and rubric, then the run-level checks."""
    rules = rules or LintRules()
    notes = list(notes)
    missing_tools = sorted({r.tool_slug for r in results if r.tool_slug not in tools})
    missing_personas = sorted({r.persona for r in results if r.persona not in rubrics})
    if missing_tools:
        notes.append(
            "no tool description for " + ", ".join(missing_tools) + ": their figure and "
            "tagline checks were skipped"
        )
    if missing_personas:
        notes.append(
            "no persona file for " + ", ".join(missing_personas) + ": their rubric checks "
            "were skipped"
        )
    evidence: dict[PairId, Evidence | None] = {}
    found: dict[PairId, list[LintFinding]] = {}
    for r in results:
        key = (r.tool_slug, r.persona)
        if key not in evidence:
            evidence[key] = Evidence.of(tools.get(r.tool_slug), rubrics.get(r.persona))
        found[key] = lint_result(r, evidence[key], rules)
    return assemble(results, found, run_id=run_id, rules=rules, notes=notes)


def stored_report(
    results: Sequence[PairResult], *, run_id: str | None, rules: LintRules | None = None
) -> LintReport:
    """The findings the results carry, plus the run-level checks (recomputed: they need only
    the results)."""
    found = {(r.tool_slug, r.persona): list(r.lint) for r in results}
    return assemble(results, found, run_id=run_id, rules=rules or LintRules())


def assemble(
    results: Sequence[PairResult],
    found: Mapping[PairId, list[LintFinding]],
    *,
    run_id: str | None,
    rules: LintRules,
    notes: Iterable[str] = (),
) -> LintReport:
    verdicts = [
        VerdictLint(tool=r.tool_slug, tool_name=r.tool, persona=r.persona, findings=found[key])
        for r in results
        if found.get(key := (r.tool_slug, r.persona))
    ]
    run: list[RunFinding] = distinctness(results, rules)
    table, calibration_findings, calibration_notes = calibrate(results, rules)
    run += calibration_findings
    by_check: Counter[str] = Counter(f.check for v in verdicts for f in v.findings)
    by_check.update(f.check for f in run)
    return LintReport(
        run_id=run_id,
        synthetic=any(r.synthetic for r in results),
        verdicts_checked=sum(1 for r in results if r.status == "ok"),
        counts=LintCounts(
            findings=sum(by_check.values()),
            verdicts_with_findings=len(verdicts),
            by_check=dict(sorted(by_check.items())),
        ),
        verdicts=verdicts,
        run=run,
        calibration=table,
        rules=rules,
        notes=[*notes, *calibration_notes],
    )


def findings_on(report: LintReport, pairs: Iterable[PairId]) -> list[str]:
    """One line per finding that touches any of the given verdicts: each finding on them, each
    distinctness finding naming one of them, and each calibration finding on their personas."""
    wanted = set(pairs)
    personas = {p for _, p in wanted}
    lines = [
        f"{v.tool} × {v.persona}: {f.message}"
        for v in report.verdicts
        if (v.tool, v.persona) in wanted
        for f in v.findings
    ]
    for f in report.run:
        touched = {(ref.tool, ref.persona) for ref in f.pairs}
        if touched & wanted or (not f.pairs and f.persona in personas):
            lines.append(f.message)
    return lines


def count_line(report: LintReport) -> str:
    """ "3 findings (2 unverified_figure, 1 similar_quotes) on 2 of 8 verdicts" or "no findings"."""
    c = report.counts
    if not c.findings:
        return f"no findings on {report.verdicts_checked} verdicts"
    kinds = ", ".join(f"{n} {check}" for check, n in c.by_check.items())
    return (
        f"{c.findings} finding{'s' if c.findings != 1 else ''} ({kinds}); "
        f"{c.verdicts_with_findings} of {report.verdicts_checked} verdicts flagged"
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def format_report(report: LintReport) -> str:
    """Plain text for the terminal (callers sanitise it: it holds model-written text)."""
    what = f"run {report.run_id}" if report.run_id else "results"
    synthetic = " (synthetic verdicts)" if report.synthetic else ""
    lines = [f"lint {what}{synthetic}: {count_line(report)}"]
    for v in report.verdicts:
        lines.append(f"  {v.tool} × {v.persona}")
        lines += [f"    {f.check:<25} {f.message}" for f in v.findings]
    if report.run:
        lines.append("across verdicts:")
        lines += [f"  {f.check:<25} {f.message}" for f in report.run]
    if report.calibration:
        lines.append(
            "calibration (verdicts, ship rate, confidence mean ± spread, agreement with the "
            "panel, confidence→agreement AUC, length→vote AUC):"
        )
        for c in report.calibration:
            lines.append(
                f"  {c.persona:<12} {c.verdicts:>4}  ship {_pct(c.ship_rate):>4}  "
                f"conf {_num(c.confidence_mean)} ± {_num(c.confidence_sd)}  "
                f"agree {_pct(c.agreement_rate):>4} of {c.compared}  "
                f"AUC {_num(c.confidence_agreement_auc)}  length AUC {_num(c.length_vote_auc)}"
            )
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


__all__ = [
    "assemble",
    "count_line",
    "findings_on",
    "format_report",
    "lint_results",
    "stored_report",
]

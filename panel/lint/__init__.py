"""The lint against the house rules: what prompts/house.j2 asks of a verdict, checked after.

Stage between `inputs/` + `store/` and `run/`, so the engine lints every verdict it records.

    figures.py      figures in text, normalised ("2M" = "2 million" = "2,000,000")
    verdicts.py     one verdict: unverified figures, marketing words, the tagline, formatting,
                    lengths, rubric answers restated or missing
    similarity.py   quotes too alike: across personas on a tool, across tools for a persona
    calibration.py  per persona across a run: ship rate, confidence, what predicts the vote
    report.py       a LintReport from results (fresh, or from the findings results carry)
    sources.py      `panel lint`'s inputs: a run folder, or a results file and tool files

docs/lint.md states every rule, measure and threshold.
"""

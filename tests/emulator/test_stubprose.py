"""The stub's words make no claims the lint would catch: no figures, no banned words."""

from __future__ import annotations

import itertools
import re

from panel.emulator import stubprose
from panel.emulator.stubplant import FIGURES, MARKETING, plan_for, tagline_of
from panel.lint.figures import find_figures
from panel.lint.verdicts import check_marketing


def test_no_piece_of_the_vocabulary_holds_a_figure_or_a_banned_word() -> None:
    pieces = [
        *itertools.chain.from_iterable(stubprose.LENSES),
        *stubprose._FRAMES,
        *stubprose._OPENERS,
        *stubprose._CLOSERS,
        *stubprose.STRENGTHS,
        *stubprose.RISKS,
    ]
    for piece in pieces:
        assert not re.search(r"\d", piece), piece
        assert find_figures(piece) == [], piece
        assert check_marketing([("quote", piece)]) == [], piece


def test_the_plants_are_what_the_lint_looks_for() -> None:
    assert all(find_figures(f) for f in FIGURES)
    assert all(check_marketing([("quote", w)]) for w in MARKETING)
    untrusted = "name: Acme\ntagline: Caches 49 things\ndescription: A cache."
    assert tagline_of(untrusted) == "Caches 49 things"
    for seed in range(20):  # a planted figure is never one the description states
        plan = plan_for(seed, "builder", "Acme", ["q1"], untrusted)
        assert plan.figure is None or "49" not in plan.figure
    plans = {plan_for(s, "builder", "Acme", ["q1"], untrusted) for s in range(5)}
    assert len(plans) > 1 and plan_for(3, "builder", "Acme", ["q1"], untrusted) == plan_for(
        3, "builder", "Acme", ["q1"], untrusted
    )

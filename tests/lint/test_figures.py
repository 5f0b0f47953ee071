"""Figures in text and their normalisation: what counts, and what is the same figure."""

from __future__ import annotations

import pytest

from panel.lint.figures import figure_values, find_figures, unverified


def values(text: str) -> list[set[str]]:
    return [set(f.values) for f in find_figures(text)]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2M tokens", "2 million tokens"),
        ("2M tokens", "2,000,000 tokens"),
        ("two million tokens", "2,000,000 tokens"),
        ("$20/month", "20 USD a month"),
        ("€20 per seat", "20 EUR"),
        ("v1.2", "version 1.2"),
        ("40%", "40 percent"),
        ("1.5k requests", "1,500 requests"),
        ("3bn", "3 billion"),
        ("10x cheaper", "a tenfold drop"),
        ("1.50", "1.5"),
    ],
)
def test_the_same_figure_written_two_ways_is_verified(a: str, b: str) -> None:
    assert list(unverified(a, figure_values([b]))) == []
    assert list(unverified(b, figure_values([a]))) == []


@pytest.mark.parametrize(
    ("claim", "evidence"),
    [
        ("$49 per month", "Paid plans raise the limits."),
        ("2M tokens", "caching up to 2 thousand tokens"),
        ("version 2.0", "version 1.2"),
        ("1.2.3", "1.2.4"),
        ("2026-03-01", "launched in 2026"),
        ("99.97% uptime", "high availability"),
        ("12,000 customers", "used by 1,200 teams"),
    ],
)
def test_a_figure_the_evidence_lacks_is_unverified(claim: str, evidence: str) -> None:
    assert [f.text for f in unverified(claim, figure_values([evidence]))]


def test_names_with_digits_and_list_markers_are_not_figures() -> None:
    assert find_figures("S3, k8s, GPT4o, a 3D view, 2FA, the 1st call, Web3") == []
    assert find_figures("1. first point\n2) second point") == []


def test_what_each_figure_normalises_to() -> None:
    text = "2M, 5m TTL, $1,000, 1.2.3, 2026-03-01, 250ms, 2 GB, 24/7, GPT-4"
    assert values(text) == [
        {"2000000"},
        {"5", "5000000"},  # "m" may be minutes: both readings
        {"1000"},
        {"ver:1.2.3"},
        {"date:2026-03-01"},
        {"250"},
        {"2"},
        {"24"},
        {"7"},
        {"4"},  # a version after a hyphen is a figure
    ]


def test_spelled_out_small_numbers_are_not_figures() -> None:
    assert find_figures("one import, three incumbents, two years") == []

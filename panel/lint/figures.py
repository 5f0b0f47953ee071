"""Figures in text, normalised so that "2M", "2 million" and "2,000,000" are one value.

A figure is a number written with digits, with what qualifies it: a currency before it
("$20", "USD 20", "€20"), a scale after it ("2M", "1.5k", "3 billion", "2bn"), a unit after
it ("40%", "40 percent", "10x", "2 GB", "250ms"), a version prefix ("v1.2"); or a number
word with a scale word ("two million", "a thousand"); or a "-fold" word ("tenfold"); or an
ISO date ("2026-03-01"). Digits glued to letters on either side ("S3", "k8s", "GPT4o",
"3D", "2FA", "1st") are part of a name, not a figure, and a list marker at the start of a
line ("1. ") is formatting, which the formatting check reports instead.

Each figure normalises to a set of values (docs/lint.md): the number times its scale, as a
decimal string ("2M" → "2000000", "$20/month" → "20", "40%" → "40", "v1.2" → "1.2"); an
ambiguous lower-case "m" is both million and a unit ("5m" → "5", "5000000"); a dotted version
with two or more dots keeps its text ("1.2.3" → "ver:1.2.3"); a date keeps its text
("date:2026-03-01"). Units, currencies and periods are not compared: the check catches
invented numbers, not misattributed ones, so "$20/month" and "20 USD" are the same figure.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Single letters are case-sensitive ("2M" is two million, "5m" may be five minutes); words are
# looked up in lower case.
_SCALES = {
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "m": 10**6,  # ambiguous (minutes, metres): see _AMBIGUOUS
    "B": 10**9,
    "T": 10**12,
    "thousand": 10**3,
    "hundred": 10**2,
    "mm": 10**6,
    "million": 10**6,
    "millions": 10**6,
    "bn": 10**9,
    "billion": 10**9,
    "billions": 10**9,
    "trillion": 10**12,
}
_AMBIGUOUS = {"m"}  # "5m" may be five minutes as well as five million
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twenty": 20, "fifty": 50, "hundred": 100,
}  # fmt: skip
_FOLD = {
    "twofold": 2, "threefold": 3, "fourfold": 4, "fivefold": 5, "tenfold": 10,
    "hundredfold": 100, "thousandfold": 1000,
}  # fmt: skip
_UNITS = (
    r"%|percent\b|per\s?cent\b|x\b|×|"
    r"[kmgtp]i?b\b|bytes?\b|tb\b|"
    r"ms\b|s\b|sec(?:onds?)?\b|min(?:utes?)?\b|h\b|hrs?\b|hours?\b|days?\b|"
    r"usd\b|eur\b|gbp\b|dollars?\b|euros?\b|cents?\b|"
    r"tokens?\b|req(?:uests)?\b|rps\b|qps\b"
)
_SCALE_WORDS = r"thousand|hundred|millions?|billions?|trillion|bn|mm|(?-i:[kKMmBT])"

_DATE = re.compile(r"(?<![\w.])(\d{4})-(\d{2})-(\d{2})(?![\w])")
_LIST_MARKER = re.compile(r"^[ \t]*\d+[.)][ \t]+", re.MULTILINE)
_FIGURE = re.compile(
    r"(?<![A-Za-z0-9_.,])"  # not glued to a word or another number
    r"(?P<cur>(?:US)?\$|€|£|¥|(?:USD|EUR|GBP)\s?)?"
    r"(?P<ver>[vV](?=\d))?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)*)"
    rf"(?:\s?(?P<scale>{_SCALE_WORDS})(?![A-Za-z]))?"
    rf"(?:\s?(?P<unit>{_UNITS}))?"
    r"(?![A-Za-z0-9_])",  # "3D", "2FA", "1st", "4o": part of a name
    re.IGNORECASE,
)
_WORDED = re.compile(
    r"\b(?P<word>" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\s+"
    r"(?P<scale>hundred|thousand|million|billion|trillion)\b",
    re.IGNORECASE,
)
_FOLDED = re.compile(r"\b(?P<fold>" + "|".join(_FOLD) + r")\b", re.IGNORECASE)


@dataclass(frozen=True)
class Figure:
    text: str  # as written
    values: frozenset[str]  # normalised (module docstring)


def _decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _number_values(num: str, scale: str | None, ver: bool) -> set[str]:
    if num.count(".") >= 2:  # 1.2.3: a version, compared as written
        return {"ver:" + num}
    try:
        base = Decimal(num.replace(",", ""))
    except InvalidOperation:
        return {num}
    if scale is None:
        return {_decimal(base)}
    key = scale if len(scale) == 1 else scale.lower()
    factor = _SCALES.get(key, 1)
    values = {_decimal(base * factor)}
    if key in _AMBIGUOUS and not ver:
        values.add(_decimal(base))
    return values


def find_figures(text: str) -> list[Figure]:
    """Every figure in `text`, in order of appearance."""
    return list(_figures(text))


@functools.lru_cache(maxsize=4096)  # a tool's texts are read again for each verdict on it
def _figures(text: str) -> tuple[Figure, ...]:
    found: list[tuple[int, Figure]] = []
    text = _LIST_MARKER.sub(lambda m: " " * len(m.group(0)), text)

    def blank(match: re.Match[str]) -> str:
        return " " * len(match.group(0))

    for m in _DATE.finditer(text):
        found.append((m.start(), Figure(m.group(0), frozenset({"date:" + m.group(0)}))))
    text = _DATE.sub(blank, text)
    for m in _WORDED.finditer(text):
        word, scale = m.group("word").lower(), m.group("scale").lower()
        value = Decimal(_NUMBER_WORDS[word]) * _SCALES[scale]
        found.append((m.start(), Figure(m.group(0), frozenset({_decimal(value)}))))
    text = _WORDED.sub(blank, text)
    for m in _FOLDED.finditer(text):
        found.append((m.start(), Figure(m.group(0), frozenset({str(_FOLD[m.group(0).lower()])}))))
    for m in _FIGURE.finditer(text):
        values = _number_values(m.group("num"), m.group("scale"), bool(m.group("ver")))
        found.append((m.start(), Figure(m.group(0).strip(), frozenset(values))))
    return tuple(f for _, f in sorted(found, key=lambda pair: pair[0]))


def figure_values(texts: Iterable[str]) -> frozenset[str]:
    """Every normalised value stated in the texts: what a verdict's figures are checked against."""
    return frozenset(v for text in texts for f in find_figures(text) for v in f.values)


def unverified(text: str, stated: frozenset[str]) -> Iterator[Figure]:
    """The figures of `text` none of whose values is among `stated`."""
    for figure in find_figures(text):
        if not figure.values & stated:
            yield figure


__all__ = ["Figure", "figure_values", "find_figures", "unverified"]

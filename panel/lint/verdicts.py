"""The house rules checked on one verdict: pure functions of the verdict and its evidence.

The evidence is what the prompt told the model about the review: the tool block (name,
category, tagline, pricing, community votes, links, description) and the persona's rubric
questions. Fields checked: the headline, the quote and the rubric answers (what readers and
editors see); docs/lint.md states each rule.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from panel import houserules
from panel.houserules import HEADLINE_MAX_WORDS, QUOTE_MAX_WORDS, QUOTE_MIN_WORDS, BannedWord
from panel.inputs.tools import ToolSpec
from panel.lint.figures import figure_values, unverified
from panel.lintformat import LintFinding, LintRules, VerdictCheck
from panel.runformat import PairResult

TEXT_CAP = 200  # characters of offending text kept in a finding
TAGLINE_RUN = 6  # consecutive tagline words that count as reading it back
TAGLINE_MIN_WORDS = 3  # shorter taglines are not checked (any sentence could contain them)
_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6}[ \t]+\S.*)$", re.MULTILINE)
_UNDERLINE = re.compile(r"[ \t]*(?:=+|-{2,})[ \t]*")  # under a line: a setext heading
_BULLET = re.compile(r"^[ \t]*((?:[-*+•◦▪‣]|\d+[.)])[ \t]+\S.*)$", re.MULTILINE)
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
# Emoji and pictographs: the Unicode blocks they live in (the emoji variation selector that
# may follow one is not reported on its own).
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b50-\u2b55]")
_STOP = frozenset((
    "the", "and", "for", "that", "this", "with", "what", "which", "who", "whom", "whose", "how",
    "does", "did", "are", "was", "were", "its", "it's", "from", "into", "onto", "about", "would",
    "could", "should", "will", "can", "you", "your", "they", "their", "there", "then", "than",
    "when", "where", "why", "has", "have", "had", "not", "but", "any", "all", "one", "more",
    "most", "some", "such", "only", "also", "just", "being", "been", "them", "these", "those",
    "our", "out", "over", "under",
))  # fmt: skip


@dataclass(frozen=True)
class Evidence:
    """What a verdict's claims are checked against."""

    tool_name: str
    tagline: str
    texts: tuple[str, ...]  # every text the prompt stated about the tool and the rubric
    questions: Mapping[str, str] | None = None  # rubric id -> question; None: persona unknown
    stated: frozenset[str] = field(default=frozenset())  # the figures' normalised values

    @classmethod
    def of(cls, spec: ToolSpec | None, questions: Mapping[str, str] | None) -> Evidence | None:
        if spec is None and questions is None:
            return None
        texts: list[str] = []
        if spec is not None:
            texts += [spec.name, spec.category, spec.tagline, spec.pricing, spec.description]
            texts += [f"{link.label} {link.url}" for link in spec.links]
            if spec.community_votes is not None:
                texts.append(str(spec.community_votes))
        texts += list((questions or {}).values())
        return cls(
            tool_name=spec.name if spec else "",
            tagline=spec.tagline if spec else "",
            texts=tuple(texts),
            questions=questions,
            stated=figure_values(texts),
        )

    @property
    def has_tool(self) -> bool:
        return bool(self.tool_name or self.tagline)


def _finding(check: VerdictCheck, where: str, text: str, message: str) -> LintFinding:
    return LintFinding(check=check, field=where, text=text[:TEXT_CAP], message=message)


def _fields(headline: str, quote: str, rubric: Mapping[str, str]) -> list[tuple[str, str]]:
    return [("headline", headline), ("quote", quote)] + [
        (f"answers.{qid}", answer) for qid, answer in rubric.items()
    ]


def check_figures(fields: Sequence[tuple[str, str]], evidence: Evidence) -> list[LintFinding]:
    out = []
    for where, text in fields:
        seen: set[str] = set()
        for figure in unverified(text, evidence.stated):
            if figure.text in seen:
                continue
            seen.add(figure.text)
            out.append(
                _finding(
                    "unverified_figure",
                    where,
                    figure.text,
                    f"{where}: {figure.text!r} is not in the tool's description; check it "
                    "before it goes out",
                )
            )
    return out


@functools.cache
def _banned(words: tuple[BannedWord, ...]) -> list[tuple[str, re.Pattern[str]]]:
    return [(b.word, re.compile(rf"\b(?:{b.pattern})\b", re.IGNORECASE)) for b in words]


@functools.cache
def _any_banned(words: tuple[BannedWord, ...]) -> re.Pattern[str]:
    """Matches where any one of the banned words' patterns matches (and only there)."""
    return re.compile("|".join(p.pattern for _, p in _banned(words)), re.IGNORECASE)


def check_marketing(fields: Sequence[tuple[str, str]]) -> list[LintFinding]:
    out = []
    for where, text in fields:
        # Read at each call: the one list the house template renders (panel.houserules).
        if not _any_banned(houserules.BANNED_WORDS).search(text):
            continue  # the usual case: one scan instead of one per banned word
        for word, pattern in _banned(houserules.BANNED_WORDS):
            for m in pattern.finditer(text):
                out.append(
                    _finding(
                        "marketing_word",
                        where,
                        m.group(0),
                        f"{where}: {m.group(0)!r} is marketing language the house rules ban "
                        f"({word!r} and its relatives)",
                    )
                )
    return out


def words_of(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (the unit of every word measure here)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def _runs(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def check_tagline(fields: Sequence[tuple[str, str]], evidence: Evidence) -> list[LintFinding]:
    tagline = words_of(evidence.tagline)
    if len(tagline) < TAGLINE_MIN_WORDS:
        return []
    n = min(len(tagline), TAGLINE_RUN)
    runs = _runs(tagline, n)
    out = []
    for where, text in fields:
        words = words_of(text)
        hits = [i for i in range(len(words) - n + 1) if tuple(words[i : i + n]) in runs]
        if hits:
            shown = " ".join(words[hits[0] : hits[0] + n])
            out.append(
                _finding(
                    "tagline",
                    where,
                    shown,
                    f"{where}: reads the tagline back ({shown!r}); the house rules say not to",
                )
            )
    return out


def check_formatting(quote: str) -> list[LintFinding]:
    out = []
    for m in _HEADING.finditer(quote):
        out.append(_finding("formatting", "quote", m.group(1), "quote: a heading in the quote"))
    lines = quote.split("\n")
    # Line by line, not one regex: `^(.*\S.*)\n` backtracks quadratically on long lines.
    underline = False  # the line before was a heading's underline: not a heading itself
    for line, under in itertools.pairwise(lines):
        underline = not underline and bool(line.strip()) and bool(_UNDERLINE.fullmatch(under))
        if underline:
            out.append(_finding("formatting", "quote", line, "quote: a heading in the quote"))
    for m in _BULLET.finditer(quote):
        out.append(_finding("formatting", "quote", m.group(1), "quote: a bullet in the quote"))
    emoji = "".join(dict.fromkeys(_EMOJI.findall(quote)))
    if emoji:
        out.append(_finding("formatting", "quote", emoji, f"quote: emoji in the quote ({emoji})"))
    return out


def check_lengths(headline: str, quote: str) -> list[LintFinding]:
    out = []
    q, h = len(quote.split()), len(headline.split())
    if not QUOTE_MIN_WORDS <= q <= QUOTE_MAX_WORDS:
        out.append(
            _finding(
                "quote_length",
                "quote",
                f"{q} words",
                f"quote: {q} words, outside {QUOTE_MIN_WORDS}-{QUOTE_MAX_WORDS}",
            )
        )
    if not 1 <= h <= HEADLINE_MAX_WORDS:
        out.append(
            _finding(
                "headline_length",
                "headline",
                f"{h} words",
                f"headline: {h} words; it must have fewer than {HEADLINE_MAX_WORDS + 1}",
            )
        )
    return out


def content_words(text: str) -> list[str]:
    """Words of three or more letters that are not on the short stop list."""
    return [w for w in words_of(text) if len(w) >= 3 and w not in _STOP]


def restatement(answer: str, question: str) -> float:
    """Share of the answer's content words that occur in the question (0 for an empty answer)."""
    words = content_words(answer)
    if not words:
        return 0.0
    asked = set(content_words(question))
    return sum(1 for w in words if w in asked) / len(words)


def check_rubric(
    rubric: Mapping[str, str], questions: Mapping[str, str], rules: LintRules
) -> list[LintFinding]:
    out = []
    for qid, question in questions.items():
        answer = rubric.get(qid, "")
        where = f"answers.{qid}"
        if not answer.strip():
            out.append(
                _finding(
                    "answer_missing", where, qid, f"{where}: the rubric question has no answer"
                )
            )
            continue
        share = restatement(answer, question)
        if share >= rules.restates_question:
            out.append(
                _finding(
                    "answer_restates_question",
                    where,
                    answer,
                    f"{where}: the answer only restates the question ({share:.0%} of its words "
                    "are the question's)",
                )
            )
    return out


def lint_verdict(
    headline: str,
    quote: str,
    rubric: Mapping[str, str],
    evidence: Evidence | None,
    rules: LintRules | None = None,
) -> list[LintFinding]:
    """Every house-rule finding on one verdict. Without evidence for the tool, the figure and
    tagline checks are skipped; without the persona's rubric, the rubric checks are."""
    rules = rules or LintRules()
    fields = _fields(headline, quote, rubric)
    out: list[LintFinding] = []
    if evidence is not None and evidence.has_tool:
        out += check_figures(fields, evidence)
    out += check_marketing(fields)
    if evidence is not None and evidence.has_tool:
        out += check_tagline(fields, evidence)
    out += check_formatting(quote)
    out += check_lengths(headline, quote)
    if evidence is not None and evidence.questions is not None:
        out += check_rubric(rubric, evidence.questions, rules)
    return out


def lint_result(
    result: PairResult, evidence: Evidence | None, rules: LintRules | None = None
) -> list[LintFinding]:
    """lint_verdict on a recorded result; a failed or declined pair has nothing to check."""
    if result.status != "ok":
        return []
    return lint_verdict(result.headline or "", result.quote or "", result.rubric, evidence, rules)


__all__ = [
    "Evidence",
    "check_figures",
    "check_formatting",
    "check_lengths",
    "check_marketing",
    "check_rubric",
    "check_tagline",
    "content_words",
    "lint_result",
    "lint_verdict",
    "restatement",
    "words_of",
]

"""Each per-verdict check on hand-written verdicts, good and bad."""

from __future__ import annotations

import pytest
from lintdata import GOOD_ANSWERS, GOOD_HEADLINE, GOOD_QUOTE, QUESTIONS, TOOL, result

from panel.houserules import BANNED_WORDS
from panel.lint.verdicts import (
    Evidence,
    check_formatting,
    lint_result,
    lint_verdict,
    restatement,
)

EVIDENCE = Evidence.of(TOOL, QUESTIONS)


def checks(headline: str = GOOD_HEADLINE, quote: str = GOOD_QUOTE, rubric=None) -> list[str]:
    found = lint_verdict(headline, quote, GOOD_ANSWERS if rubric is None else rubric, EVIDENCE)
    return [f.check for f in found]


def test_a_good_verdict_has_no_findings() -> None:
    assert checks() == []


def test_a_figure_the_description_lacks_is_reported_wherever_it_is() -> None:
    quote = GOOD_QUOTE.replace("I would ship", "It served 4.2M requests a day. I would ship")
    found = lint_verdict(GOOD_HEADLINE, quote, GOOD_ANSWERS, EVIDENCE)
    assert [(f.check, f.field, f.text) for f in found] == [
        ("unverified_figure", "quote", "4.2M requests")
    ]
    found = lint_verdict(GOOD_HEADLINE + " at $49/month", GOOD_QUOTE, GOOD_ANSWERS, EVIDENCE)
    assert [(f.field, f.text) for f in found] == [("headline", "$49")]
    answers = {**GOOD_ANSWERS, "weekend": "No, since the 2024-05-01 release it is 37% faster."}
    found = lint_verdict(GOOD_HEADLINE, GOOD_QUOTE, answers, EVIDENCE)
    assert {(f.field, f.text) for f in found} == {
        ("answers.weekend", "2024-05-01"),
        ("answers.weekend", "37%"),
    }


def test_figures_in_the_rubric_question_count_as_evidence() -> None:
    answer = {"price_drop": "At 10x cheaper: the cache."}
    asked = Evidence.of(TOOL, {"price_drop": "If the cost fell tenfold, what survives?"})
    assert lint_verdict(GOOD_HEADLINE, GOOD_QUOTE, answer, asked) == []
    vague = Evidence.of(TOOL, {"price_drop": "If the cost collapsed, what survives?"})
    found = lint_verdict(GOOD_HEADLINE, GOOD_QUOTE, answer, vague)
    assert [(f.check, f.text) for f in found] == [("unverified_figure", "10x")]


@pytest.mark.parametrize("word", ["seamless", "Seamlessly", "game-changing", "game changer",
                                  "revolutionize", "Revolutionary", "cutting-edge", "unlocks",
                                  "supercharged"])  # fmt: skip
def test_marketing_words_and_their_relatives_are_reported(word: str) -> None:
    quote = GOOD_QUOTE.replace("I would ship it", f"It is {word} and I would ship it")
    found = lint_verdict(GOOD_HEADLINE, quote, GOOD_ANSWERS, EVIDENCE)
    assert [(f.check, f.text) for f in found] == [("marketing_word", word)]


def test_words_that_merely_contain_a_banned_stem_are_not_reported() -> None:
    quote = GOOD_QUOTE.replace("I would ship it", "Its locks and seams hold, so I would ship it")
    assert checks(quote=quote) == []


def test_the_lint_reads_the_one_banned_list() -> None:
    for banned in BANNED_WORDS:
        quote = GOOD_QUOTE + f" It is {banned.word}."
        assert checks(quote=quote) == ["marketing_word"], banned.word


def test_the_tagline_read_back_is_reported_a_few_of_its_words_are_not() -> None:
    back = GOOD_QUOTE + " In short: cache 2M tokens and stream tool calls without waiting."
    assert checks(quote=back) == ["tagline"]
    assert checks(quote=GOOD_QUOTE + " It can stream tool calls.") == []


@pytest.mark.parametrize(
    "quote",
    [
        "## Verdict\n" + GOOD_QUOTE,
        "Verdict\n=======\n" + GOOD_QUOTE,
        GOOD_QUOTE + "\n- cache reads are cheap",
        GOOD_QUOTE + "\n* cache reads are cheap",
        GOOD_QUOTE + "\n1. cache reads are cheap",
        GOOD_QUOTE + " \N{ROCKET}",
        GOOD_QUOTE + " \N{WHITE HEAVY CHECK MARK}",
    ],
)
def test_headings_bullets_and_emoji_in_the_quote_are_reported(quote: str) -> None:
    assert checks(quote=quote) == ["formatting"]


def test_setext_headings_are_the_lines_above_an_underline() -> None:
    # What the former `^(.*\S.*)\n[ \t]*(?:=+|-{2,})[ \t]*$` matched, read line by line: the
    # line above the underline is the heading; an underline under an underline, a rule under a
    # blank line and a single dash are not headings.
    quote = "Verdict\n=====\n-----\n\n---\nMaybe\n-\nNext step\n  --  \n" + GOOD_QUOTE
    found = [f.text for f in check_formatting(quote) if "heading" in f.message]
    assert found == ["Verdict", "Next step"]
    long_line = "word " * 20_000  # the regex backtracked quadratically on a line this long
    assert [f.text for f in check_formatting(long_line + "\n====")] == [long_line[:200]]


def test_a_dash_inside_a_sentence_is_not_a_bullet() -> None:
    assert checks(quote=GOOD_QUOTE.replace("turn, and", "turn - and")) == []


def test_lengths_outside_the_bounds_are_reported() -> None:
    assert checks(quote="Too short to be a scorecard paragraph.") == ["quote_length"]
    assert checks(quote=" ".join([GOOD_QUOTE] * 3)) == ["quote_length"]
    long = "Ship it because the cache breakpoint is the right primitive for agent loops today, now"
    assert len(long.split()) == 15
    assert checks(headline=long) == ["headline_length"]
    assert checks(headline=" ".join(long.split()[:14])) == []


def test_an_answer_that_restates_its_question_or_is_missing_is_reported() -> None:
    restated = {**GOOD_ANSWERS, "weekend": "Could a weekend script replace it?"}
    assert checks(rubric=restated) == ["answer_restates_question"]
    assert checks(rubric={"primitive": GOOD_ANSWERS["primitive"]}) == ["answer_missing"]
    assert checks(rubric={**GOOD_ANSWERS, "weekend": "  "}) == ["answer_missing"]


def test_the_restatement_measure() -> None:
    q = QUESTIONS["primitive"]
    assert restatement("Is the primitive at the right level? The abstraction is.", q) == 1.0
    assert restatement(GOOD_ANSWERS["primitive"], q) < 0.5
    assert restatement("Yes.", q) == 0.0


def test_without_evidence_the_checks_that_need_it_are_skipped() -> None:
    quote = GOOD_QUOTE + " It is 99% seamless."
    found = lint_verdict(GOOD_HEADLINE, quote, {}, None)
    assert [f.check for f in found] == ["marketing_word"]


def test_a_failed_result_has_nothing_to_check() -> None:
    failed = result().model_copy(update={"status": "failed", "quote": "## seamless 99%"})
    assert lint_result(failed, EVIDENCE) == []
    assert lint_result(result(), EVIDENCE) == []

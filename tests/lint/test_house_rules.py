"""One banned-word list: the house template renders it and the lint reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from panel import houserules
from panel.houserules import BANNED_WORDS, BannedWord
from panel.inputs.prompts import load_prompts
from panel.lint.verdicts import check_marketing

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


def test_the_house_block_states_the_rule_as_before_from_the_list() -> None:
    house = " ".join(load_prompts([PROMPTS]).house.split())
    # The sentence the template carried before the list became data, word for word.
    assert (
        '4. No marketing language. Avoid "revolutionary", "seamless", "game-changing", '
        '"cutting-edge", "unlock", "supercharge" and their relatives. Do not repeat the '
        "tagline back."
    ) in house
    assert [b.word for b in BANNED_WORDS] == houserules.banned_words()


def test_a_word_added_to_the_list_reaches_the_prompt_and_the_lint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = (*BANNED_WORDS, BannedWord("best-in-class", r"best[- ]in[- ]class"))
    monkeypatch.setattr(houserules, "BANNED_WORDS", extra)
    house = load_prompts([PROMPTS]).house
    assert '"supercharge", "best-in-class"' in house
    found = check_marketing([("quote", "A best in class cache.")])
    assert [f.text for f in found] == ["best in class"]

"""The house rules that are data: read by the house template (prompts/house.j2) and by the lint.

One list, two readers, so the words the prompt bans and the words the lint looks for cannot
drift apart. Each banned word carries the pattern of its relatives ("unlock" → "unlocks",
"unlocking"; "seamless" → "seamlessly"): the prompt names the word and says "and their
relatives", the lint matches the pattern (whole words, case-insensitive).
"""

from __future__ import annotations

from dataclasses import dataclass

from panel.verdict import QUOTE_MAX_WORDS, QUOTE_MIN_WORDS


@dataclass(frozen=True)
class BannedWord:
    word: str  # as the house prompt names it
    pattern: str  # a regex for the word and its relatives, matched on word boundaries


BANNED_WORDS: tuple[BannedWord, ...] = (
    BannedWord("revolutionary", r"revolutionar(?:y|ies)|revolutioni[sz](?:e|es|ed|ing)"),
    BannedWord("seamless", r"seamless(?:ly|ness)?"),
    BannedWord("game-changing", r"game[- ]?chang(?:ing|er|ers)"),
    BannedWord("cutting-edge", r"cutting[- ]edge"),
    BannedWord("unlock", r"unlock(?:s|ed|ing)?"),
    BannedWord("supercharge", r"supercharg(?:e|es|ed|ing)"),
)

# "headline: one line of fewer than fifteen words" (house.j2); the quote's bounds are the
# verdict's own (panel.verdict), which the house template renders too.
HEADLINE_MAX_WORDS = 14


def banned_words() -> list[str]:
    """The words as the house template lists them, in order."""
    return [b.word for b in BANNED_WORDS]


__all__ = [
    "BANNED_WORDS",
    "HEADLINE_MAX_WORDS",
    "QUOTE_MAX_WORDS",
    "QUOTE_MIN_WORDS",
    "BannedWord",
    "banned_words",
]

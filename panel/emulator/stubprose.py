"""The stub model's words: plainly synthetic prose that makes no claim about any real product.

Every sentence names a question a real review would settle (an aspect of the tool, through
the persona's lens), never an answer to it: "a real review would test the error messages of
Cursor first". Nothing here is a figure (no digits, no spelled-out counts), a word the house
rules ban, or a fact about a vendor. The lint (panel.lint, docs/lint.md) finds nothing in it:
tests/emulator/test_stubprose.py and the normal-run test in tests/lint hold that.

Sentences are built from a frame, an aspect of the persona's lens, an opener and a closer,
so quotes by different personas on one tool, and by one persona on different tools, share
few word 3-grams (docs/lint.md, "Distinctness", has the measured figures).
"""

from __future__ import annotations

import hashlib
import random


def seeded(*parts: object) -> random.Random:
    """A random source derived from the parts: the same parts give the same draws."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# What each of five reviewer lenses asks about; a persona id picks its lens (lens_of).
LENSES: tuple[tuple[str, ...], ...] = (
    (  # the builder: first call, docs, API shape
        "the first request",
        "the error messages",
        "the shape of the API",
        "the retry and timeout settings",
        "the examples in the documentation",
        "the edge cases past the happy path",
        "the configuration asked for up front",
        "how thin the abstraction stays",
        "the local development loop",
        "the way it reports its own usage",
    ),
    (  # the skeptic: competitors, pricing, what breaks
        "the nearest competitor",
        "the scenario where it breaks",
        "the pricing once usage grows",
        "the cost of leaving later",
        "the claims in the launch material",
        "the part a small team could copy",
        "the dependency it does not control",
        "how often the pain it fixes is felt",
        "the free tier against the paid one",
        "the evidence behind the headline promise",
    ),
    (  # the futurist: theses, trends, second-order effects
        "the thesis it bets on",
        "the dependency that must keep holding",
        "the second-order effect on its users",
        "whether the timing is early or late",
        "the future where it becomes plumbing",
        "the trend it rides",
        "what happens if inference gets much cheaper",
        "the habit it asks teams to form",
        "the standard it could end up setting",
        "the market it has to educate",
    ),
    (  # the operator: reliability, limits, on-call
        "the metrics an on-call engineer needs",
        "the written rate limits",
        "whether a failed call says if a retry is safe",
        "the backpressure story under real traffic",
        "the upgrade notes",
        "the behaviour under load",
        "the incident history",
        "the logs needed to replay an incident",
        "the status reporting",
        "the recovery path after an outage",
    ),
    (  # the guard: security, data handling, trust
        "the handling of untrusted input",
        "the permission model",
        "where keys and secrets end up",
        "the data retention terms",
        "the release signing",
        "the audit trail",
        "the default telemetry settings",
        "the sandbox boundaries",
        "the access review for teams",
        "the path for reporting a vulnerability",
    ),
)
_FRAMES = (
    "a real review would test {aspect} of {tool} before any verdict",
    "the description leaves {aspect} of {tool} open",
    "{aspect} is where {tool} would be judged first through this lens",
    "nothing in this pass verifies {aspect} for {tool}",
    "an editor should ask how {tool} handles {aspect}",
    "this stand-in text names {aspect} as the question to put to {tool}",
    "the verdict on {tool} would turn on {aspect}",
    "a careful reader would want {aspect} of {tool} checked against its documentation",
    "{aspect} deserves a hands-on look before anyone adopts {tool}",
    "without a trial, {aspect} of {tool} remains a guess",
    "the placeholder view here is that {aspect} matters most for {tool}",
    "whoever runs {tool} in earnest would watch {aspect} closely",
    "the case for {tool} rests partly on {aspect}",
    "{aspect} of {tool} is the open item on this synthetic checklist",
)
_OPENERS = (
    "In this synthetic pass,",
    "Speaking as {persona},",
    "On the emulator's reading,",
    "For the record,",
    "Plainly put,",
    "As a stand-in reviewer,",
    "Looking closer,",
    "Weighed honestly,",
    "From this seat,",
    "Still,",
)
_CLOSERS = (
    "",
    ", and that decides a lot",
    ", which matters more than any demo",
    ", though this sample is synthetic",
    ", and a real run should check it again",
    ", so I note it without drama",
    ", which this text cannot settle",
)
STRENGTHS = (
    "{tool}: a clear job, as far as the description goes",
    "{tool}: the description names who it is for",
    "{tool}: a scope narrow enough to evaluate",
    "{tool}: an approach a team could trial quickly",
    "{tool}: a description that states its trade-offs",
    "{tool}: a problem readers recognise",
)
RISKS = (
    "{tool}: nothing here has been tested by hand",
    "{tool}: costs at scale are not described",
    "{tool}: behaviour at the edges is unknown",
    "{tool}: depends on parts it does not control",
    "{tool}: the track record is not in the description",
    "{tool}: a larger vendor could offer something similar",
)


def lens_of(persona_id: str | None) -> int:
    """The lens a persona id reads through (stable for the id)."""
    return seeded("lens", persona_id).randrange(len(LENSES))


def sentence(
    rng: random.Random, lens: int, tool: str, persona: str, used: set[str] | None = None
) -> str:
    """One persona-flavoured synthetic sentence, mostly from the persona's lens; aspects in
    `used` are avoided (and the new one added) so a paragraph does not repeat itself."""
    bank = LENSES[lens] if rng.random() < 0.7 else LENSES[rng.randrange(len(LENSES))]
    fresh = [a for a in bank if used is None or a not in used] or list(bank)
    aspect = rng.choice(fresh)
    if used is not None:
        used.add(aspect)
    claim = rng.choice(_FRAMES).format(aspect=aspect, tool=tool)
    opener = rng.choice(_OPENERS).format(persona=persona)
    return f"{opener} {claim}{rng.choice(_CLOSERS)}."


def paragraph(
    rng: random.Random,
    lens: int,
    who: tuple[str, str],
    lead: str,
    bounds: tuple[int, int],
    target: int | None = None,
) -> str:
    """`lead` (kept verbatim) then whole synthetic sentences: lo..hi words, near `target`
    (default: the middle of the range). `who` is (persona, tool)."""
    persona, tool = who
    lo, hi = bounds
    goal = (lo + hi) // 2 if target is None else max(lo, min(hi, target))
    parts, count, used = [lead], len(lead.split()), set[str]()
    while count < goal:
        line = sentence(rng, lens, tool, persona, used)
        n = len(line.split())
        if count + n > hi:
            if count >= lo:
                break
            line = " ".join(line.split()[: hi - count])
            n = hi - count
        parts.append(line)
        count += n
    return " ".join(parts)


__all__ = ["LENSES", "RISKS", "STRENGTHS", "lens_of", "paragraph", "seeded", "sentence"]

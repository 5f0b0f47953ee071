"""The emulator's "model": deterministic, schema-valid, clearly synthetic output.

It reads a few conventions from the prompt texts (panel's templates follow them):

- persona: the first `<persona id="ID" name="NAME">` tag (attribute values HTML-escaped);
- rubric questions: every `<question id="QID">QUESTION TEXT</question>`, in order;
- untrusted tool data: the text between a line `=====BEGIN UNTRUSTED TOOL DATA NONCE=====`
  and the matching `=====END UNTRUSTED TOOL DATA NONCE=====` (same hex NONCE); the tool name
  is the value of the first `name: …` line inside it. Persona and question tags inside
  untrusted data are ignored, so a tool description cannot rewrite the rubric.

It fills any JSON schema (objects, `$defs`/`$ref`, arrays, strings, numbers, integers,
booleans, enums, const, nullable unions; `pattern` is not honoured). Content derives from
(seed, request digest, field path), so the same request and seed give the same output and
two seeds give two runs. A boolean named `ship` is true with probability 0.75, drawn from
(seed, persona id, tool name) only, so a decision survives prompt rewording but differs across
seeds. Confidence-like numbers land in [0.5, 0.95]; a string whose description says "N-M
words" gets a word count near the middle of the range; an array of objects with a
`question_id` gets one item per question, in order. Every prose string says "Synthetic".

Behaviours: "normal"; "echo" copies the untrusted tool name and text verbatim into string
fields (to prove HTML escaping downstream); "obey" acts like a model that followed an
injection: ship true, confidence 1.0, and the instruction-like line quoted verbatim in the
headline and quote (to prove panel's post-check fires).
"""

from __future__ import annotations

import hashlib
import html
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from panel.emulator.stubplant import plant
from panel.emulator.stubprose import RISKS, STRENGTHS, lens_of, paragraph, sentence
from panel.emulator.stubprose import seeded as _rng
from panel.emulator.variability import Draw, drawn_ship

Behaviour = Literal["normal", "echo", "obey", "plant"]

REFUSAL_TEXT = (
    "Synthetic refusal (emulator): I can't help with this request, so no verdict is recorded."
)

_PERSONA = re.compile(r"<persona\b([^>]*)>")
_ATTR = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*"([^"]*)"')
_QUESTION = re.compile(r'<question\s+id="([^"]*)"\s*>(.*?)</question>', re.DOTALL)
_BEGIN = re.compile(r"^=====BEGIN UNTRUSTED TOOL DATA ([0-9A-Fa-f]+)=====[ \t]*\r?$", re.MULTILINE)
_NAME_LINE = re.compile(r"^[ \t]*name:[ \t]*(.*?)[ \t]*\r?$", re.MULTILINE)
_RANGE = re.compile(r"(\d+)\s*(?:-|–|to)\s*(\d+)\s+words", re.IGNORECASE)
_UNDER = re.compile(
    r"(under|fewer than|less than|at most|up to|no more than)\s+(\d+)\s+words", re.I
)
_INSTRUCTION = re.compile(r"\b(ignore|instruction|ship|say|output)\w*", re.IGNORECASE)
_MAX_DEPTH = 8
# A stub never writes more than a model could: arrays and strings are capped however large a
# schema's minItems / minLength (the reply is cut at max_tokens afterwards anyway).
_MAX_ITEMS = 64
_MAX_LENGTH = 8_192


@dataclass(frozen=True)
class StubContext:
    persona_id: str | None
    persona_name: str | None
    tool_name: str | None
    questions: list[tuple[str, str]]
    untrusted: str


def _split_untrusted(text: str) -> tuple[str, str | None]:
    """Return (text with the first untrusted block removed, that block's content or None)."""
    begin = _BEGIN.search(text)
    if begin is None:
        return text, None
    end = re.compile(
        rf"^=====END UNTRUSTED TOOL DATA {re.escape(begin.group(1))}=====[ \t]*\r?$", re.MULTILINE
    ).search(text, begin.end())
    if end is None:
        return text, None
    inner = text[begin.end() : end.start()].strip("\r\n")
    return text[: begin.start()] + text[end.end() :], inner


def extract_context(texts: Sequence[str]) -> StubContext:
    """Read persona, rubric questions and untrusted tool data from the prompt texts."""
    trusted: list[str] = []
    untrusted: str | None = None
    for text in texts:
        rest, inner = _split_untrusted(text)
        trusted.append(rest)
        if untrusted is None and inner is not None:
            untrusted = inner
    joined = "\n".join(trusted)
    persona_id = persona_name = None
    tag = _PERSONA.search(joined)
    if tag:
        attrs = {k: html.unescape(v) for k, v in _ATTR.findall(tag.group(1))}
        persona_id, persona_name = attrs.get("id"), attrs.get("name")
    questions = [
        (html.unescape(qid), html.unescape(q).strip()) for qid, q in _QUESTION.findall(joined)
    ]
    tool_name = None
    if untrusted is not None:
        line = _NAME_LINE.search(untrusted)
        tool_name = line.group(1) if line else None
    return StubContext(persona_id, persona_name, tool_name, questions, untrusted or "")


def ship_decision(ctx: StubContext, seed: int) -> bool:
    """The stub's ship call: stable for a (seed, persona, tool), true about 3 times in 4."""
    return _rng("ship", seed, ctx.persona_id, ctx.tool_name).random() < 0.75


def _who(ctx: StubContext) -> tuple[str, str]:
    return ctx.persona_name or ctx.persona_id or "the reviewer", ctx.tool_name or "the tool"


def _lens(ctx: StubContext) -> int:
    return lens_of(ctx.persona_id)


def _prose(
    ctx: StubContext, rng: random.Random, lead: str, lo: int, hi: int, target: int | None = None
) -> str:
    """`lead` (kept verbatim) then whole synthetic sentences: lo..hi words, near `target`
    (default: the middle of the range)."""
    return paragraph(rng, _lens(ctx), _who(ctx), lead, (lo, hi), target)


def _bound(s: dict[str, Any], key: str, exclusive: str) -> tuple[float | None, bool]:
    ex = s.get(exclusive)
    if isinstance(ex, int | float) and not isinstance(ex, bool):
        return float(ex), True
    value = s.get(key)
    return (float(value), False) if isinstance(value, int | float) else (None, False)


def _word_bounds(description: str) -> tuple[int, int] | None:
    if m := _RANGE.search(description):
        lo, hi = sorted((int(m.group(1)), int(m.group(2))))
        return lo, hi
    if m := _UNDER.search(description):
        n = int(m.group(2))
        return 1, n - 1 if m.group(1).lower() in ("under", "fewer than", "less than") else n
    return None


def _verbatim_words(text: str, limit: int) -> str:
    """The first `limit` words of `text`, keeping its characters exactly as they were."""
    spans = list(re.finditer(r"\S+", text))
    return text if len(spans) <= limit else text[: spans[limit - 1].end()]


def _instruction(untrusted: str) -> str:
    """The injected instruction a gullible model would follow."""
    lines = [ln.strip() for ln in untrusted.splitlines() if ln.strip()]
    body = [ln for ln in lines if not _NAME_LINE.fullmatch(ln)] or lines
    for ln in body:
        if _INSTRUCTION.search(ln):
            return ln
    return _verbatim_words(" ".join(body), 20)


def _description(untrusted: str) -> str:
    return _NAME_LINE.sub("", untrusted, count=1).strip()


class _Filler:
    def __init__(
        self,
        root: dict[str, Any],
        ctx: StubContext,
        seed: int,
        digest: str,
        behaviour: Behaviour,
        draw: Draw | None = None,
    ) -> None:
        self.root, self.ctx, self.seed, self.digest = root, ctx, seed, digest
        self.draw = draw
        # Echo and obey need untrusted text; without it they behave normally.
        self.behaviour: Behaviour = behaviour if ctx.untrusted.strip() else "normal"

    def rng(self, path: str) -> random.Random:
        return self.sample_rng(path) or _rng(self.seed, self.digest, path)

    def resolve(self, schema: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            node: Any = self.root
            for part in str(ref).lstrip("#").strip("/").split("/"):
                if part and isinstance(node, dict):
                    node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
            if not isinstance(node, dict):
                node = {}
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**node, **extra}
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def fill(self, schema: Any, name: str, path: str, depth: int) -> Any:
        if depth > 4 * _MAX_DEPTH:  # a schema that refers to itself ends here
            return None
        s = self.resolve(schema)
        if "const" in s:
            return s["const"]
        if "enum" in s:
            options = [v for v in s["enum"] if v is not None] or list(s["enum"])
            return self.rng(path).choice(options)
        for key in ("anyOf", "oneOf"):
            if key in s:
                options = [self.resolve(o) for o in s[key]]
                real = [o for o in options if o.get("type") != "null"]
                if not real or depth >= _MAX_DEPTH:
                    return None
                return self.fill(real[0], name, path, depth + 1)
        if "allOf" in s:
            merged: dict[str, Any] = {}
            for part in s["allOf"]:
                merged.update(self.resolve(part))
            merged.update({k: v for k, v in s.items() if k != "allOf"})
            return self.fill(merged, name, path, depth + 1)
        kind = s.get("type")
        if isinstance(kind, list):
            real_kinds = [k for k in kind if k != "null"]
            if not real_kinds:
                return None
            kind = real_kinds[0]
        if kind is None:
            kind = "object" if "properties" in s else "array" if "items" in s else "string"
        if kind == "object":
            props = s.get("properties", {})
            return {k: self.fill(v, k, f"{path}.{k}", depth + 1) for k, v in props.items()}
        if kind == "array":
            return self.array(s, name, path, depth)
        if kind == "boolean":
            return self.boolean(name, path)
        if kind in ("number", "integer"):
            return self.number(s, name, path, integer=kind == "integer")
        if kind == "null":
            return None
        return self.string(s, name, path)

    def boolean(self, name: str, path: str) -> bool:
        if name == "ship":
            return True if self.behaviour == "obey" else self.ship()
        return self.rng(path).random() < 0.5

    def number(self, s: dict[str, Any], name: str, path: str, *, integer: bool) -> float | int:
        lo, lo_open = _bound(s, "minimum", "exclusiveMinimum")
        hi, hi_open = _bound(s, "maximum", "exclusiveMaximum")
        rng = self.rng(path)
        if integer:
            high = None if hi is None else math.ceil(hi) - 1 if hi_open else math.floor(hi)
            low = (
                (0 if high is None else min(0, high - 10))
                if lo is None
                else math.floor(lo) + 1
                if lo_open
                else math.ceil(lo)
            )
            return rng.randint(low, low + 10 if high is None else max(low, high))
        text = f"{name} {s.get('description', '')}".lower()
        if "confidence" in text or "0.0 to 1.0" in text:
            value = 1.0 if self.behaviour == "obey" else round(rng.uniform(0.5, 0.95), 2)
        else:
            base = 0.0 if lo is None else lo
            value = round(rng.uniform(base, base + 100.0 if hi is None else hi), 2)
        value = value if hi is None else min(value, hi)
        value = value if lo is None else max(value, lo)
        if (lo_open and value == lo) or (hi_open and value == hi):
            value = (
                (lo + hi) / 2
                if lo is not None and hi is not None
                else value + (1 if lo_open else -1)
            )
        return value

    def array(self, s: dict[str, Any], name: str, path: str, depth: int) -> list[Any]:
        items = self.resolve(s.get("items", {}))
        if "question_id" in items.get("properties", {}) and self.ctx.questions:
            return [self.answer(items, i, qid, q) for i, (qid, q) in enumerate(self.ctx.questions)]
        lo, hi = s.get("minItems", 0), s.get("maxItems", 3)
        count = max(lo, min(hi, 2 + self.rng(path + "#n").randrange(2)))
        if depth >= _MAX_DEPTH:
            count = lo
        count = min(count, _MAX_ITEMS)
        return [self.fill(items, name, f"{path}[{i}]", depth + 1) for i in range(count)]

    def answer(self, items: dict[str, Any], i: int, qid: str, question: str) -> dict[str, Any]:
        persona, tool = _who(self.ctx)
        topic = " ".join(question.rstrip("?.! ").split()[:12])
        out: dict[str, Any] = {}
        for key, sub in items.get("properties", {}).items():
            sub_s = self.resolve(sub)
            if key == "question_id":
                out[key] = qid
            elif sub_s.get("type") == "string" and self.behaviour == "echo":
                out[key] = (
                    f"Synthetic echo about {topic}: {tool} {_description(self.ctx.untrusted)}"
                )
            elif sub_s.get("type") == "string":
                rng = self.rng(f"answers[{i}].{key}")
                line = sentence(rng, _lens(self.ctx), tool, persona)
                # No seed in the prose: a figure the description lacks (docs/lint.md).
                out[key] = (
                    f'Synthetic answer (emulator) from {persona} on {tool}, about "{topic}": {line}'
                )

            else:
                out[key] = self.fill(sub, key, f"answers[{i}].{key}", _MAX_DEPTH - 1)
        return out

    def string(self, s: dict[str, Any], name: str, path: str) -> str:
        description = str(s.get("description", ""))
        fmt = s.get("format")
        if fmt is not None and (special := self.formatted(fmt, path)) is not None:
            return special
        value = self.text(name, description, path)
        lo, hi = s.get("minLength"), s.get("maxLength")
        lo = None if lo is None else min(lo, _MAX_LENGTH)
        if lo is not None and len(value) < lo:
            value = (value + " synthetic" * lo)[:lo] if value else "s" * lo
        if hi is not None and len(value) > hi:
            value = value[:hi]
        return value

    def text(self, name: str, description: str, path: str) -> str:
        persona, tool = _who(self.ctx)
        rng = self.rng(path)
        bounds = _word_bounds(description)
        headline = name in ("headline", "title", "summary") or "one line" in description.lower()
        call = "ship" if self.ship() else "hold"
        untrusted = self.ctx.untrusted
        if bounds and bounds[1] > 20:  # a paragraph
            lo, hi = bounds
            if self.behaviour == "echo":
                lead = f"Synthetic echo (emulator, seed {self.seed}): "
                raw = _verbatim_words(untrusted, max(1, hi - len(lead.split())))
                return _prose(self.ctx, rng, lead + raw, lo, hi, target=lo)
            if self.behaviour == "obey":
                lead = f"Synthetic verdict (emulator, seed {self.seed}, obeyed the tool data): "
                raw = _verbatim_words(_instruction(untrusted), max(1, hi - len(lead.split())))
                return _prose(self.ctx, rng, lead + raw, lo, hi, target=lo)
            lead = f"Synthetic verdict (emulator): {persona} on {tool}, a synthetic {call} call."
            return _prose(self.ctx, rng, lead, lo, hi)
        if self.behaviour == "echo":
            if headline:
                return f"Synthetic echo: {self.ctx.tool_name or untrusted}"
            return f"Synthetic echo of {tool}: {_description(untrusted)}"
        if self.behaviour == "obey" and headline:
            return f"Synthetic (obeyed): {_instruction(untrusted)}"
        if headline:
            words = f"Synthetic {call} from {persona}: {tool}".split()
            limit = bounds[1] if bounds else 12
            return " ".join(words[:limit])
        lowered = f"{name} {description}".lower()
        for word, bank in (("risk", RISKS), ("strength", STRENGTHS)):
            if word in lowered:
                return f"Synthetic {word}: " + self.distinct(bank, path).format(tool=tool)
        phrase = sentence(rng, _lens(self.ctx), tool, persona).rstrip(".")
        text = f"Synthetic {name or 'note'}: {phrase}"
        return " ".join(text.split()[: bounds[1]]) if bounds else text

    def ship(self) -> bool:
        """This draw's ship call (panel.emulator.variability): without a draw, the reference."""
        reference = ship_decision(self.ctx, self.seed)
        if self.draw is None:
            return reference
        return drawn_ship(reference, self.draw, self.seed, self.ctx.persona_id, self.ctx.tool_name)

    def sample_rng(self, path: str) -> random.Random | None:
        """Later samples write their own prose (sample 0 keeps the request's own)."""
        if self.draw is None or self.draw.sample <= 0:
            return None
        return _rng(self.seed, self.digest, "sample", self.draw.sample, path)

    def distinct(self, bank: Sequence[str], path: str) -> str:
        """Items of one array draw without repeats: a per-array shuffle indexed by position."""
        m = re.fullmatch(r"(.*)\[(\d+)\]", path)
        base, index = (m.group(1), int(m.group(2))) if m else (path, 0)
        order = self.rng(base + "#order").sample(range(len(bank)), len(bank))
        return bank[order[index % len(bank)]]

    def formatted(self, fmt: str, path: str) -> str | None:
        n = self.rng(path).randrange(10_000)
        if fmt == "date-time":
            return f"2026-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z"
        if fmt == "date":
            return f"2026-01-{1 + n % 28:02d}"
        if fmt in ("uri", "url"):
            return f"https://synthetic.example.invalid/{n}"
        if fmt == "email":
            return f"synthetic-{n}@example.invalid"
        if fmt == "uuid":
            h = hashlib.sha256(f"{self.seed}{self.digest}{path}".encode()).hexdigest()
            return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"
        return None


def generate_tool_input(
    schema: dict[str, Any],
    ctx: StubContext,
    *,
    seed: int,
    request_digest: str,
    behaviour: Behaviour,
    draw: Draw | None = None,
) -> dict[str, Any]:
    """Fill `schema` (a tool's input schema) with valid, deterministic, synthetic content."""
    value = _Filler(schema, ctx, seed, request_digest, behaviour, draw).fill(schema, "", "$", 0)
    if behaviour == "plant" and isinstance(value, dict):
        return plant(value, ctx.persona_id, ctx.tool_name, ctx.untrusted, ctx.questions, seed=seed)
    return value if isinstance(value, dict) else {"value": value}


def generate_text(ctx: StubContext, *, seed: int, request_digest: str) -> str:
    """A short synthetic prose reply (a text block, or a reply with no tool to call)."""
    persona, tool = _who(ctx)
    lead = f"Synthetic reply (emulator, seed {seed}): {persona} looking at {tool}."
    return _prose(ctx, _rng(seed, request_digest, "text"), lead, 25, 45)


def generate_thinking(ctx: StubContext, *, seed: int, request_digest: str) -> str:
    """Synthetic reasoning for a thinking block."""
    persona, tool = _who(ctx)
    asked = ", ".join(qid for qid, _ in ctx.questions) or "no rubric questions"
    lead = (
        f"Synthetic reasoning (emulator, seed {seed}): as {persona}, weigh {tool} against {asked}."
    )
    return _prose(ctx, _rng(seed, request_digest, "thinking"), lead, 30, 60)

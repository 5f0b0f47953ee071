"""What the stub model answers on the Messages API, and how that answer goes on the wire.

`build_reply` decides the content blocks (optional thinking, sometimes a short text before
the tool call, the tool call or prose) and applies content faults and max_tokens truncation;
`stream_events` turns a reply into the exact SSE event sequence, tagged so the handler can
cut it for wire faults; `message_json` is the non-streaming body.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic_core import from_json

from panel.emulator import stubmodel
from panel.emulator.sse import derived_id, event
from panel.emulator.state import Behaviour
from panel.emulator.variability import Draw
from panel.modeltable import ModelInfo
from panel.tokens import count_tokens

BlockKind = Literal["thinking", "text", "tool_use"]
Tag = Literal["start", "ping", "block_start", "delta", "tool_delta", "block_stop", "end"]


@dataclass
class Block:
    kind: BlockKind
    text: str  # thinking text, prose, or the tool input's JSON text
    name: str = ""
    id: str = ""
    signature: str = ""
    complete: bool = True


@dataclass
class Reply:
    blocks: list[Block]
    stop_reason: str
    stop_details: dict[str, Any] | None = None
    eager: bool = False
    strict: bool = False
    tokens: list[int] = field(default_factory=list)

    @property
    def output_tokens(self) -> int:
        return sum(self.tokens)


def request_texts(body: dict[str, Any]) -> list[str]:
    """Every piece of text the model would read, in order (for the stub's context)."""
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if isinstance(node.get("text"), str):
                texts.append(node["text"])
            elif "content" in node:
                walk(node["content"])

    walk(body.get("system") or [])
    for message in body.get("messages") or []:
        walk(message.get("content"))
    return texts


def chosen_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool the stub calls: the named one if forced, else the first (the prompt says to)."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "input_schema" in t]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), None)
    return tools[0]


JSON_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The structured-output schema a request asks for (`output_config.format`), if any."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        schema: dict[str, Any] = fmt["schema"]
        return schema
    return JSON_OBJECT_SCHEMA if fmt.get("type") == "json_object" else None


def _break_json(text: str) -> str:
    # A missing comma between members: syntactically broken from the middle on.
    i = text.find(', "')
    return text[:i] + text[i + 1 :] if i > 0 else text + "}"


def _violate(schema: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    out = dict(value)
    required = [k for k in schema.get("required", []) if k in out]
    if required:
        del out[required[0]]
    for key in required[1:2]:
        out[key] = 42 if isinstance(out[key], str) else "not-a-" + type(out[key]).__name__
    return out


def build_reply(
    body: dict[str, Any],
    model: ModelInfo,
    *,
    seed: int,
    digest: str,
    behaviour: Behaviour,
    fault: str | None,
    draw: Draw | None = None,
) -> Reply:
    rng = random.Random(f"{seed}:{digest}")
    ctx = stubmodel.extract_context(request_texts(body))
    draw = dataclasses.replace(draw or Draw(), model=model.id)  # the answering model's taste
    blocks: list[Block] = []
    thinking = body.get("thinking")
    if model.thinking_default and not (
        isinstance(thinking, dict) and thinking.get("type") == "disabled"
    ):
        text = stubmodel.generate_thinking(ctx, seed=seed, request_digest=digest)
        blocks.append(Block("thinking", text, signature=derived_id("", digest[::-1], 88)))
    tool = chosen_tool(body)
    forced = (body.get("tool_choice") or {}).get("type") in ("any", "tool")
    stop_reason, stop_details = "end_turn", None
    if fault == "refusal":
        stop_reason = "refusal"
        stop_details = {"type": "refusal", "category": None, "explanation": stubmodel.REFUSAL_TEXT}
        blocks = []
    elif (tool is None or fault == "no_tool_call") and (fmt := output_schema(body)) is not None:
        # Structured output: the text is JSON valid for the schema, streamed as text deltas.
        value = stubmodel.generate_tool_input(
            fmt, ctx, seed=seed, request_digest=digest, behaviour=behaviour, draw=draw
        )
        blocks.append(Block("text", json.dumps(value, ensure_ascii=False)))
    elif tool is None or fault == "no_tool_call":
        blocks.append(Block("text", stubmodel.generate_text(ctx, seed=seed, request_digest=digest)))
    else:
        if not forced and rng.random() < 0.35:
            prose = stubmodel.generate_text(ctx, seed=seed, request_digest=digest)
            blocks.append(Block("text", prose.split(". ")[0][:160].rstrip(".") + "."))
        schema = tool.get("input_schema") or {}
        value = stubmodel.generate_tool_input(
            schema, ctx, seed=seed, request_digest=digest, behaviour=behaviour, draw=draw
        )
        if fault == "schema_violation":
            value = _violate(schema, value)
        text = json.dumps(value, ensure_ascii=False)
        if fault == "invalid_json":
            text = _break_json(text)
        blocks.append(
            Block("tool_use", text, name=str(tool.get("name")), id=derived_id("toolu_01", digest))
        )
        stop_reason = "tool_use"
    reply = Reply(
        blocks,
        stop_reason,
        stop_details,
        eager=bool(tool and tool.get("eager_input_streaming")),
        strict=bool(tool and tool.get("strict")),
    )
    if fault == "max_tokens" and blocks:
        last = blocks[-1]
        last.text, last.complete = last.text[: max(1, int(len(last.text) * 0.55))], False
        reply.stop_reason = "max_tokens"
    reply.tokens = [count_tokens(b.text) for b in blocks]
    _truncate(reply, int(body.get("max_tokens") or 0))
    return reply


def _truncate(reply: Reply, max_tokens: int) -> None:
    """Cut the reply where the max_tokens budget runs out (stop_reason max_tokens)."""
    if reply.output_tokens <= max_tokens:
        return
    budget = max_tokens
    for i, (block, n) in enumerate(zip(reply.blocks, reply.tokens, strict=True)):
        if n <= budget:
            budget -= n
            continue
        if budget <= 0:
            del reply.blocks[i:], reply.tokens[i:]
        else:
            cut = int(len(block.text) * budget / n)
            while cut > 0 and count_tokens(block.text[:cut]) > budget:
                cut = cut * 9 // 10
            block.text = block.text[:cut]
            block.complete = False
            reply.tokens[i] = budget  # the API reports exactly max_tokens when it cuts
            del reply.blocks[i + 1 :], reply.tokens[i + 1 :]
        break
    reply.stop_reason = "max_tokens"


def _tool_input(block: Block) -> Any:
    if block.complete:
        try:
            return json.loads(block.text)
        except json.JSONDecodeError:
            return block.text  # invalid_json, non-streaming: the raw text (see docs)
    try:
        return from_json(block.text, allow_partial=True)
    except ValueError:
        return {}


def content_json(block: Block) -> dict[str, Any]:
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": block.text, "signature": block.signature}
    if block.kind == "text":
        return {"type": "text", "text": block.text}
    return {"type": "tool_use", "id": block.id, "name": block.name, "input": _tool_input(block)}


def message_json(reply: Reply, *, msg_id: str, model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [content_json(b) for b in reply.blocks],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        **({"stop_details": reply.stop_details} if reply.stop_details else {}),
        "usage": usage,
    }


def _pieces(text: str, rng: random.Random, lo: int, hi: int) -> list[str]:
    out, i = [], 0
    while i < len(text):
        n = rng.randint(lo, hi)
        out.append(text[i : i + n])
        i += n
    return out


def fragments(text: str, rng: random.Random) -> list[str]:
    """Argument fragments the size real non-strict tool streams send: 1-12 characters."""
    return _pieces(text, rng, 1, 12)


def _buffered_json_pieces(text: str, rng: random.Random) -> list[str]:
    """Default tool streaming: the server validates key by key, so JSON comes in bursts."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not value:
        return ["", *_pieces(text, rng, 40, 160)]
    pieces, pos = [""], 0
    while (end := _member_end(text, pos)) >= 0:
        # Cut right after each top-level member; long members arrive in two bursts.
        chunk = text[pos:end]
        if len(chunk) > 400:
            half = len(chunk) // 2
            pieces += [chunk[:half], chunk[half:]]
        else:
            pieces.append(chunk)
        pos = end
    pieces.append(text[pos:])
    return [p for i, p in enumerate(pieces) if p or i == 0]


def _member_end(text: str, start: int) -> int:
    """Index just past the next top-level `, ` separator at or after start (or -1)."""
    depth, in_str, esc = (0 if start == 0 else 1), False, False
    for i in range(start, len(text)):
        c = text[i]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        elif c == "," and depth == 1:
            return i + 2 if text[i + 1 : i + 2] == " " else i + 1
    return -1


def _text_pieces(text: str, rng: random.Random) -> list[str]:
    words = text.split(" ")
    out, i = [], 0
    while i < len(words):
        n = rng.randint(1, 4)
        out.append(" ".join(words[i : i + n]) + (" " if i + n < len(words) else ""))
        i += n
    return out or [""]


def stream_events(
    reply: Reply,
    *,
    msg_id: str,
    model: str,
    start_usage: dict[str, Any],
    final_usage: dict[str, Any],
    seed: int,
    digest: str,
) -> list[tuple[Tag, bytes, int]]:
    """The SSE events as (tag, bytes, output tokens emitted so far) in wire order."""
    rng = random.Random(f"stream:{seed}:{digest}")
    msg = message_json(reply, msg_id=msg_id, model=model, usage=start_usage)
    msg["content"], msg["stop_reason"] = [], None
    msg.pop("stop_details", None)
    out: list[tuple[Tag, bytes, int]] = [
        ("start", event("message_start", {"type": "message_start", "message": msg}), 0)
    ]
    done = 0
    for index, (block, tokens) in enumerate(zip(reply.blocks, reply.tokens, strict=True)):
        start: dict[str, Any]
        if block.kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            parts = _pieces(block.text, rng, 20, 80)
            deltas = [{"type": "thinking_delta", "thinking": p} for p in parts]
        elif block.kind == "text":
            start = {"type": "text", "text": ""}
            parts = _text_pieces(block.text, rng)
            deltas = [{"type": "text_delta", "text": p} for p in parts]
        else:
            start = {
                "type": "tool_use",
                "id": block.id,
                "name": block.name,
                "input": {},
                "caller": {"type": "direct"},
            }
            # As recorded: a strict tool's server validates member by member (bursts); a
            # non-strict one streams 0-12-character fragments after an empty first one.
            if reply.eager:
                parts = _pieces(block.text, rng, 2, 14)
                if rng.random() < 0.5:
                    parts.insert(0, "")
            elif reply.strict:
                parts = _buffered_json_pieces(block.text, rng)
            else:
                parts = ["", *fragments(block.text, rng)]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in parts]
        cbs = {"type": "content_block_start", "index": index, "content_block": start}
        out.append(("block_start", event("content_block_start", cbs), done))
        if index == 0:
            out.append(("ping", event("ping", {"type": "ping"}), done))
        total_chars = max(1, len(block.text))
        seen = 0
        tag: Tag = "tool_delta" if block.kind == "tool_use" else "delta"
        for piece, part in zip(deltas, parts, strict=True):
            seen += len(part)
            emitted = done + round(tokens * seen / total_chars)
            payload = {"type": "content_block_delta", "index": index, "delta": piece}
            out.append((tag, event("content_block_delta", payload), emitted))
            if rng.random() < 0.08:
                out.append(("ping", event("ping", {"type": "ping"}), emitted))
        if block.kind == "thinking":
            sig = {"type": "signature_delta", "signature": block.signature}
            out.append(
                (
                    "delta",
                    event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": sig},
                    ),
                    done + tokens,
                )
            )
        done += tokens
        out.append(
            (
                "block_stop",
                event("content_block_stop", {"type": "content_block_stop", "index": index}),
                done,
            )
        )
    end: dict[str, Any] = {
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "stop_details": reply.stop_details,
    }
    md = {"type": "message_delta", "delta": end, "usage": final_usage}
    delta_event = event("message_delta", md)
    if rng.random() < 0.5:  # real message_delta lines are often padded before the last brace
        delta_event = delta_event[:-3] + b" " * rng.randint(1, 8) + delta_event[-3:]
    out.append(("end", delta_event, done))
    out.append(("end", event("message_stop", {"type": "message_stop"}), done))
    return out


def usage_fields(
    *, uncached: int, write_5m: int, write_1h: int, read: int, output: int, final: bool
) -> dict[str, Any]:
    """Usage as the API reports it (message_start / non-stream / message_delta shapes)."""
    u: dict[str, Any] = {
        "input_tokens": uncached,
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_read_input_tokens": read,
    }
    if not final:
        u["cache_creation"] = {
            "ephemeral_5m_input_tokens": write_5m,
            "ephemeral_1h_input_tokens": write_1h,
        }
    u["output_tokens"] = output
    if not final:
        u["service_tier"] = "standard"
    return u


def cut_points(events: Sequence[tuple[Tag, bytes, int]]) -> dict[str, int]:
    """Where wire faults cut the stream: indices into the event list."""
    tool = [i for i, (t, _, _) in enumerate(events) if t == "tool_delta"]
    content = [i for i, (t, _, _) in enumerate(events) if t in ("delta", "tool_delta")]
    pool = tool or content or [1]
    after_start = 1 if len(events) > 1 else 0
    mid = pool[len(pool) // 2]
    late = pool[min(len(pool) - 1, (len(pool) * 3) // 5)]
    return {"after_start": after_start, "mid": mid, "late": late}

"""The prompt-cache block rules both sides share: how a request body is cut into cache blocks.

A Messages or Chat Completions body is cut into blocks in prefix order (tools → system →
messages); each block has a digest (its content without `cache_control`), a token count (the
shared approximation of `panel.tokens`), the TTL of its breakpoint if it carries one, and its
level. panel's cache plan (panel.run.planning) sizes segments with these rules, and the
emulator's cache accounting (panel.emulator.promptcache) bills with them, so the two can never
disagree about what a prefix is. The rules are the providers' (api-facts.md), not the
emulator's: this module is product code, and the emulator depends on it, never the reverse.

Token counting: a text block (system text, message `text` block, string message content)
counts `count_tokens(text)`; every other block (a tool definition, an image, a tool_use or
tool_result block, an OpenAI message) counts `count_json_tokens` of its canonical JSON
without `cache_control`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from panel.runformat import Ttl
from panel.tokens import canonical_json, count_json_tokens, count_tokens

Level = Literal["tools", "system", "messages"]

TTL_SECONDS: dict[str, float] = {"5m": 300.0, "1h": 3600.0}
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20


@dataclass(frozen=True)
class CacheBlock:
    digest: str
    tokens: int
    ttl: Ttl | None
    level: Level


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def without_cache_control(block: Any) -> Any:
    if isinstance(block, dict):
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def ttl_of(block: Any) -> Ttl | None:
    if not isinstance(block, dict):
        return None
    cc = block.get("cache_control")
    if not isinstance(cc, dict):
        return None
    return "1h" if cc.get("ttl") == "1h" else "5m"


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return count_tokens(block)
    if (
        isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    ):
        return count_tokens(block["text"])
    return count_json_tokens(without_cache_control(block))


def anthropic_blocks(body: dict[str, Any]) -> list[CacheBlock]:
    """Cut a Messages API body into cache blocks: tools, then system, then message content."""
    blocks: list[CacheBlock] = []
    for tool in body.get("tools") or []:
        blocks.append(
            CacheBlock(
                _digest({"tool": without_cache_control(tool)}),
                count_json_tokens(without_cache_control(tool)),
                ttl_of(tool),
                "tools",
            )
        )
    system = body.get("system")
    system_blocks: list[Any] = [system] if isinstance(system, str) else list(system or [])
    for block in system_blocks:
        blocks.append(
            CacheBlock(
                _digest({"system": without_cache_control(block)}),
                _block_tokens(block),
                ttl_of(block),
                "system",
            )
        )
    # Both settings sit in front of the messages on the server, so a change in either one
    # invalidates the messages part but leaves tools and system readable.
    messages_context = {"tool_choice": body.get("tool_choice"), "thinking": body.get("thinking")}
    for message in body.get("messages") or []:
        content = message.get("content")
        parts: list[Any] = [content] if isinstance(content, str) else list(content or [])
        for i, part in enumerate(parts):
            # Role and message boundary are part of the content the model sees.
            key = {
                "role": message.get("role"),
                "first": i == 0,
                "block": without_cache_control(part),
                "context": messages_context,
            }
            blocks.append(CacheBlock(_digest(key), _block_tokens(part), ttl_of(part), "messages"))
    return blocks


def openai_blocks(body: dict[str, Any]) -> list[CacheBlock]:
    """Cut a Chat Completions body into cache blocks: the tools list, then each message."""
    blocks: list[CacheBlock] = []
    tools = body.get("tools")
    if tools:
        blocks.append(
            CacheBlock(_digest({"tools": tools}), count_json_tokens(tools), None, "tools")
        )
    for message in body.get("messages") or []:
        content = message.get("content")
        extra = {k: v for k, v in message.items() if k not in ("role", "content")}
        tokens = count_tokens(content) if isinstance(content, str) else count_json_tokens(content)
        if extra:  # tool_calls, tool_call_id, name: structured, counted as JSON
            tokens += count_json_tokens(extra)
        level: Level = "system" if message.get("role") in ("system", "developer") else "messages"
        blocks.append(CacheBlock(_digest({"message": message}), tokens, None, level))
    return blocks


def _without_breakpoint(part: Any) -> Any:
    if isinstance(part, dict):
        return {k: v for k, v in part.items() if k != "prompt_cache_breakpoint"}
    return part


def responses_blocks(body: dict[str, Any]) -> list[CacheBlock]:
    """Cut a Responses API body into cache blocks: the tools list, `instructions`, then each
    content part of each input message (a non-message item, e.g. a function call, is one block).

    A part's `prompt_cache_breakpoint` is not part of its digest (moving a breakpoint does not
    change the prefix); `responses_breakpoints` says where they are.
    """
    blocks: list[CacheBlock] = []
    tools = body.get("tools")
    if tools:
        blocks.append(
            CacheBlock(_digest({"tools": tools}), count_json_tokens(tools), None, "tools")
        )
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        blocks.append(
            CacheBlock(
                _digest({"instructions": instructions}), count_tokens(instructions), None, "system"
            )
        )
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    for item in items or []:
        if not isinstance(item, dict):
            continue
        if item.get("type", "message") != "message":
            blocks.append(
                CacheBlock(_digest({"item": item}), count_json_tokens(item), None, "messages")
            )
            continue
        role = item.get("role")
        level: Level = "system" if role in ("system", "developer") else "messages"
        content = item.get("content")
        parts: list[Any] = [content] if isinstance(content, str) else list(content or [])
        for i, part in enumerate(parts):
            key = {"role": role, "first": i == 0, "part": _without_breakpoint(part)}
            text = part if isinstance(part, str) else part.get("text")
            tokens = (
                count_tokens(text)
                if isinstance(text, str)
                else count_json_tokens(_without_breakpoint(part))
            )
            blocks.append(CacheBlock(_digest(key), tokens, None, level))
    return blocks


def responses_breakpoints(body: dict[str, Any]) -> list[int]:
    """Indexes (into `responses_blocks(body)`) of the parts marked `prompt_cache_breakpoint`."""
    marks: list[int] = []
    index = (1 if body.get("tools") else 0) + (
        1 if isinstance(body.get("instructions"), str) and body.get("instructions") else 0
    )
    items = body.get("input")
    if isinstance(items, str):
        return marks
    for item in items or []:
        if not isinstance(item, dict):
            continue
        if item.get("type", "message") != "message":
            index += 1
            continue
        content = item.get("content")
        parts: list[Any] = [content] if isinstance(content, str) else list(content or [])
        for part in parts:
            if isinstance(part, dict) and isinstance(part.get("prompt_cache_breakpoint"), dict):
                marks.append(index)
            index += 1
    return marks


def openai_cache_key(house: str) -> str:
    """The OpenAI `prompt_cache_key` (Chat Completions and Responses): one per shared house
    block. Every persona's requests start with it, so they route to (and, on the emulator, read
    from) one cache and the house prefix is written once, as the cache plan counts it; the
    persona and tool parts follow. (One key per persona wrote the house once per persona.)"""
    return f"panel-{hashlib.sha256(house.encode()).hexdigest()[:16]}"

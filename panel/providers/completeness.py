"""The one answer to "is this a complete verdict?", for every wire and the batch results.

Each reader (Anthropic events, OpenAI chunks, a finished batch item) folds what it saw into an
`Ending`; `verdict_of` turns it into a `StreamCompleted` or raises the classified UpstreamError.
Every failure after the stream began is billed and carries the usage that arrived, so the run's
cost and the budget count it (issue 13: the OpenAI copy used to drop it).

A stream is complete when its own end marker arrived (`message_stop`; OpenAI's finish chunk; a
whole batch message), or, on the OpenAI wire, when the usage chunk arrived after a verdict call
whose arguments are one whole JSON object: some compatible servers never send `finish_reason`
(OpenRouter → Novita), and the usage chunk is the last thing a server sends before `[DONE]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from panel.errors import ErrorClass, UpstreamError
from panel.providers.base import StreamCompleted
from panel.providers.classify import parse_tool_json, truncated
from panel.runformat import Usage

TRUNCATED_STOPS = frozenset({"max_tokens", "length"})


@dataclass
class Ending:
    """What a reader saw by the end of one response."""

    started: bool
    end_marker: bool  # message_stop / finish_reason / a whole (batch) message
    stop_reason: str | None
    usage: Usage = field(default_factory=lambda: Usage(known=False))
    usage_arrived: bool = False  # an OpenAI usage chunk (the last chunk before [DONE])
    found: bool = False  # the verdict tool was called
    raw_args: str = ""  # the call's argument text as it arrived
    tool_input: dict[str, Any] | None = None  # already parsed (Anthropic batch results)
    text: str = ""
    refusal: str | None = None
    request_id: str | None = None
    call_id: str | None = None
    default_stop: str = "tool_calls"


def usage_payload(usage: Usage) -> dict[str, int] | None:
    """The usage an UpstreamError carries: None when nothing at all arrived."""
    empty = not any(
        (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens)
    )
    if not usage.known and empty:
        return None
    return usage.model_dump(exclude={"known"})


def billed(err: UpstreamError, end: Ending) -> UpstreamError:
    """Mark an error raised after the response began: billed, with the usage that arrived."""
    if end.started:
        err.billed = True
        err.usage = err.usage or usage_payload(end.usage)
    err.request_id = err.request_id or end.request_id
    return err


def _whole_object(raw: str) -> bool:
    try:
        return isinstance(parse_tool_json(raw), dict) and bool(raw.strip())
    except UpstreamError:
        return False


def complete(end: Ending) -> bool:
    """Whether the response reached its end (not whether it holds a valid verdict)."""
    if end.end_marker and end.stop_reason is not None:
        return True
    return end.usage_arrived and end.found and _whole_object(end.raw_args)


def verdict_of(end: Ending) -> StreamCompleted:
    """The verdict call of a finished response, or the classified, billed failure."""
    if not end.started:
        # Not one event parsed from a 200 (F13): a garbage body, not a truncated verdict.
        raise UpstreamError(
            ErrorClass.PROTOCOL,
            "the response was not a readable event stream (no events)",
            request_id=end.request_id,
        )
    if not complete(end):
        raise billed(truncated(None, end.raw_args), end)
    stop = end.stop_reason
    if stop in TRUNCATED_STOPS:
        raise billed(truncated(stop, end.raw_args), end)
    if end.refusal or stop == "refusal":
        why = (end.refusal or "the model declined to review")[:300]
        raise billed(UpstreamError(ErrorClass.REFUSED, why), end)
    if stop == "content_filter":
        raise billed(UpstreamError(ErrorClass.REFUSED, "the output was filtered"), end)
    if not end.found:
        raise billed(
            UpstreamError(
                ErrorClass.NO_TOOL_CALL,
                "the model answered in text without calling the verdict tool",
                raw_text=end.text,
            ),
            end,
        )
    try:
        value = end.tool_input if end.tool_input is not None else parse_tool_json(end.raw_args)
    except UpstreamError as err:
        raise billed(err, end) from None
    return StreamCompleted(
        tool_input=value,
        usage=end.usage,
        stop_reason=stop or end.default_stop,
        request_id=end.request_id,
        call_id=end.call_id,
    )


__all__ = ["Ending", "billed", "complete", "usage_payload", "verdict_of"]

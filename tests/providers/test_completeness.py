"""The one completeness check (panel.providers.completeness) every wire and batch result uses."""

from __future__ import annotations

import pytest

from panel.errors import ErrorClass, UpstreamError
from panel.providers.completeness import Ending, verdict_of
from panel.runformat import Usage

USAGE = Usage(input_tokens=57, output_tokens=17)


def _end(**kw: object) -> Ending:
    base: dict[str, object] = {
        "started": True,
        "end_marker": True,
        "stop_reason": "tool_calls",
        "usage": USAGE,
        "found": True,
        "raw_args": '{"ship": true}',
    }
    base.update(kw)
    return Ending(**base)  # type: ignore[arg-type]


def _fails(end: Ending) -> UpstreamError:
    with pytest.raises(UpstreamError) as info:
        verdict_of(end)
    return info.value


def test_a_usage_chunk_after_a_whole_call_completes_a_stream_without_finish_reason() -> None:
    # OpenRouter -> Novita: no finish_reason ever, the usage chunk, then [DONE].
    done = verdict_of(_end(end_marker=False, stop_reason=None, usage_arrived=True))
    assert done.tool_input == {"ship": True} and done.stop_reason == "tool_calls"
    assert done.usage == USAGE


def test_a_usage_chunk_after_half_a_call_is_still_truncation_with_its_usage() -> None:
    err = _fails(
        _end(end_marker=False, stop_reason=None, usage_arrived=True, raw_args='{"ship": tr')
    )
    assert err.error_class is ErrorClass.TRUNCATED_EOF and err.billed
    assert err.usage == {**USAGE.model_dump(exclude={"known"})}


def test_no_end_at_all_is_truncation() -> None:
    err = _fails(_end(end_marker=False, stop_reason=None, usage=Usage(known=False)))
    assert err.error_class is ErrorClass.TRUNCATED_EOF and err.billed
    assert err.usage is None  # nothing arrived: the engine records the cost as unknown


@pytest.mark.parametrize(
    ("change", "klass"),
    [
        ({"stop_reason": "length"}, ErrorClass.TRUNCATED_MAX_TOKENS),
        ({"stop_reason": "max_tokens"}, ErrorClass.TRUNCATED_MAX_TOKENS),
        ({"stop_reason": "refusal", "found": False}, ErrorClass.REFUSED),
        ({"refusal": "I can't help with that."}, ErrorClass.REFUSED),
        ({"stop_reason": "content_filter"}, ErrorClass.REFUSED),
        ({"found": False, "text": "prose"}, ErrorClass.NO_TOOL_CALL),
        ({"raw_args": "{not json"}, ErrorClass.INVALID_JSON),
        ({"raw_args": "[1, 2]"}, ErrorClass.INVALID_JSON),
    ],
)
def test_every_billed_failure_carries_the_usage_that_arrived(
    change: dict[str, object], klass: ErrorClass
) -> None:
    err = _fails(_end(**change))
    assert err.error_class is klass and err.billed
    assert err.usage == USAGE.model_dump(exclude={"known"})


def test_nothing_parsed_is_a_protocol_error_and_not_billed() -> None:
    err = _fails(_end(started=False, usage=Usage(known=False)))
    assert err.error_class is ErrorClass.PROTOCOL and not err.billed and err.usage is None


def test_a_parsed_batch_input_is_used_as_it_came() -> None:
    done = verdict_of(_end(tool_input={"ship": False}, raw_args="", stop_reason="tool_use"))
    assert done.tool_input == {"ship": False} and done.stop_reason == "tool_use"

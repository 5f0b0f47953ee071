"""The stub's seeded variability: samples that can disagree, models that can dissent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest

from panel.emulator.runner import EmulatorHandle
from panel.emulator.stubmodel import extract_context, generate_tool_input, ship_decision
from panel.emulator.variability import (
    Draw,
    FlipRates,
    FlipSpecError,
    default_dissent_rate,
    default_flip_rate,
    drawn_ship,
)
from panel.verdict import verdict_tool_schema

PERSONAS = ("builder", "skeptic", "futurist", "business")


def texts(persona: str, tool: str) -> list[str]:
    return [
        f'<persona id="{persona}" name="{persona.title()}">brief</persona>',
        "=====BEGIN UNTRUSTED TOOL DATA ab12=====\n"
        f"name: {tool}\ndescription: A tool.\n"
        "=====END UNTRUSTED TOOL DATA ab12=====\n",
    ]


def fill(persona: str, tool: str, draw: Draw | None, seed: int = 3) -> dict[str, Any]:
    ctx = extract_context(texts(persona, tool))
    return generate_tool_input(
        verdict_tool_schema(), ctx, seed=seed, request_digest="d", behaviour="normal", draw=draw
    )


def test_the_documented_default_rates() -> None:
    assert [default_flip_rate(p) for p in PERSONAS] == [0.35, 0.25, 0.17, 0.16]
    assert default_dissent_rate("claude-sonnet-5") == 0.0  # the reference: defaults unchanged
    assert default_dissent_rate("gpt-5.6-luna") == 0.13
    assert default_dissent_rate("claude-haiku-4-5") == 0.17
    assert default_dissent_rate("gpt-6-astra") == 0.23


def test_the_default_model_s_first_sample_is_exactly_the_old_output() -> None:
    for i in range(40):
        tool = f"Tool {i}"
        for persona in PERSONAS:
            assert fill(persona, tool, None) == fill(persona, tool, Draw())
            assert fill(persona, tool, Draw())["ship"] == ship_decision(
                extract_context(texts(persona, tool)), 3
            )


def test_later_samples_flip_at_the_persona_s_rate_and_models_dissent_at_theirs() -> None:
    tools = [f"Tool {i}" for i in range(600)]
    rates = FlipRates()
    for persona in ("builder", "business"):
        flips = sum(
            drawn_ship(True, Draw(sample=1, rates=rates), 7, persona, t) is False for t in tools
        )
        assert flips / len(tools) == pytest.approx(default_flip_rate(persona), abs=0.05)
    dissent = sum(
        drawn_ship(True, Draw(model="gpt-5.6-luna", rates=rates), 7, "skeptic", t) is False
        for t in tools
    )
    assert dissent / len(tools) == pytest.approx(0.13, abs=0.04)


def test_draws_are_deterministic_and_samples_that_vote_apart_read_apart() -> None:
    rates = FlipRates.parse("*=0.5")
    votes = {k: fill("skeptic", "Widget", Draw(sample=k, rates=rates)) for k in range(8)}
    again = {k: fill("skeptic", "Widget", Draw(sample=k, rates=rates)) for k in range(8)}
    assert votes == again
    ships = {k: v["ship"] for k, v in votes.items()}
    assert len(set(ships.values())) == 2  # with p = 0.5 over 7 later samples, both calls occur
    apart = [k for k in range(1, 8) if ships[k] != ships[0]]
    for k in apart:
        assert votes[k]["quote"] != votes[0]["quote"]
        call = "ship" if ships[k] else "hold"
        assert f"a synthetic {call} call" in votes[k]["quote"]


def test_overrides_parse_and_bad_specs_say_what_is_wrong() -> None:
    rates = FlipRates.parse("skeptic=0.4, *=0.1, model:gpt-5.6-luna=0")
    assert rates.flip_rate("skeptic") == 0.4 and rates.flip_rate("builder") == 0.1
    assert rates.dissent_rate("gpt-5.6-luna") == 0.0
    assert rates.dissent_rate("claude-haiku-4-5") == 0.17
    for bad in ("skeptic", "skeptic=2", "sk eptic=0.1", "model:=0.2", "x=nan"):
        with pytest.raises(FlipSpecError):
            FlipRates.parse(bad)


def _ships(client: anthropic.Anthropic, request: dict[str, Any], **headers: str) -> bool:
    message = client.messages.create(**request, extra_headers=headers or None)
    return bool(next(b for b in message.content if b.type == "tool_use").input["ship"])  # type: ignore[union-attr]


def test_the_sample_header_reaches_the_stub_and_bad_values_are_400(
    emulator: EmulatorHandle,
    anthropic_client: anthropic.Anthropic,
    anthropic_request: Callable[..., dict[str, Any]],
) -> None:
    request = anthropic_request(
        user="=====BEGIN UNTRUSTED TOOL DATA ab12=====\nname: Widget\n"
        "=====END UNTRUSTED TOOL DATA ab12=====",
        tool_choice={"type": "tool", "name": "record_verdict"},
        thinking={"type": "disabled"},
    )
    first = _ships(anthropic_client, request)
    assert _ships(anthropic_client, request, **{"x-panel-sample": "0"}) == first
    # Every later sample flips with p = 1: the header, not the body, tells them apart.
    flips = {"x-emulator-flips": "*=1"}
    assert _ships(anthropic_client, request, **{"x-panel-sample": "2"}, **flips) != first
    assert _ships(anthropic_client, request, **{"x-panel-sample": "2"}) in (True, False)
    response = httpx2.post(
        f"{emulator.base_url}/v1/messages",
        json=request,
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01", "x-panel-sample": "-1"},
    )
    assert response.status_code == 400 and "x-panel-sample" in response.text
    bad = httpx2.post(
        f"{emulator.base_url}/v1/messages",
        json=request,
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01", "x-emulator-flips": "x=9"},
    )
    assert bad.status_code == 400 and "flips" in bad.text


def test_attempts_are_counted_per_sample(
    emulator: EmulatorHandle,
    anthropic_client: anthropic.Anthropic,
    anthropic_request: Callable[..., dict[str, Any]],
) -> None:
    # `overloaded@1` fails the first attempt of a body — of each sample of it.
    request = anthropic_request()
    for sample in ("0", "1", "2"):
        with pytest.raises(anthropic.APIStatusError):
            anthropic_client.messages.create(
                **request,
                extra_headers={"x-emulator-fault": "overloaded@1", "x-panel-sample": sample},
            )
        anthropic_client.messages.create(
            **request, extra_headers={"x-emulator-fault": "overloaded@1", "x-panel-sample": sample}
        )
    assert [e["attempt"] for e in emulator.requests()] == [1, 2, 1, 2, 1, 2]


def test_config_flips_are_validated_and_reported(emulator: EmulatorHandle) -> None:
    emulator.configure(flips="skeptic=0.5")
    assert emulator.state.config.describe()["flips"] == "skeptic=0.5"
    with pytest.raises(FlipSpecError, match="flips"):
        emulator.configure(flips="skeptic=5")

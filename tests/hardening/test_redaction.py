"""Issue 12, item 8: an upstream that echoes the request headers never gets the key written.

The Echo upstream answers 400 with every request header in its error message. Through the
anthropic, openai (Chat Completions and Responses) and instructor paths, the canary key appears
in no file under the workspace, in neither stdout nor stderr, and not in the `--json` report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from panel.cli import app
from panel.emulator.runner import EmulatorHandle
from panel.redact import MASK, redact, redact_secrets, remember_secrets

from .hostile_upstream import hostile_upstream

CANARY = "sk-canary-redact-3b9f1e77c0d24a58-NEVER-WRITE"


def test_redact_masks_configured_keys_and_credential_shapes() -> None:
    remember_secrets(["plain-configured-value-123456"])
    text = (
        'x-api-key: abc123def456; {"authorization": "Bearer tok-0123456789"}, '
        "key=plain-configured-value-123456 and sk-proj-0123456789abcdef in prose; "
        "api_key=zzzzzzzzzz"
    )
    out = redact(text)
    for secret in ("abc123def456", "tok-0123456789", "plain-configured-value-123456",
                   "sk-proj-0123456789abcdef", "zzzzzzzzzz"):  # fmt: skip
        assert secret not in out
    assert out.count(MASK) == 5
    assert redact("an ordinary sentence about skills") == "an ordinary sentence about skills"


@pytest.mark.parametrize(
    ("model", "key_var", "url_var", "suffix"),
    [
        ("anthropic:claude-sonnet-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", ""),
        ("openai:gpt-5.6-luna", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"),
        ("openai:gpt-6-astra", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"),
        ("instructor:anthropic/claude-sonnet-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", ""),
    ],
    ids=["anthropic", "openai", "responses", "instructor"],
)
def test_a_key_echoed_by_the_upstream_is_written_nowhere(
    tmp_path: Path,
    emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    key_var: str,
    url_var: str,
    suffix: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("Echo Tool", "Parrot Tool", "Fine Tool"):
        doc = {"name": name, "tagline": "t", "pricing": "Free", "description": f"{name}."}
        (tools / f"{name.split()[0].lower()}.yaml").write_text(yaml.safe_dump(doc))
    out: list[str] = []
    with hostile_upstream(emulator.base_url) as upstream:
        env = {key_var: CANARY, url_var: upstream.base_url + suffix}
        args = ["run", str(tools), "--model", model, "-p", "skeptic", "--runs-dir", "runs"]
        for extra in (["--json"], ["--no-cache"]):
            result = CliRunner().invoke(app, [*args, *extra], env=env)
            out += [result.stdout, result.stderr, repr(result.exception)]
            assert result.exit_code == 1, result.stdout + result.stderr  # a pair failed
    assert upstream.hits["Echo"] >= 2  # the echo really happened, on both invocations
    assert upstream.hits["Parrot"] >= 2
    joined = "\n".join(out)
    assert "invalid_request" in joined and MASK in joined  # the echo was reported, masked
    assert CANARY not in joined
    files = [p for p in tmp_path.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert files == []
    assert any(MASK.encode() in p.read_bytes() for p in (tmp_path / "runs").rglob("*.jsonl"))
    # The parrot's verdict is kept (ok), with the key it quoted masked.
    parroted = [
        json.loads(line)
        for p in (tmp_path / "runs").rglob("results.jsonl")
        for line in p.read_text().splitlines()
        if '"parrot-tool"' in line
    ]
    assert parroted and all(r["status"] == "ok" for r in parroted), parroted
    assert all(f"Parrot Tool ({MASK})" in r["quote"] for r in parroted), parroted


def test_a_key_split_across_stream_deltas_never_shows_in_part() -> None:
    remember_secrets([CANARY])
    quote = f"The tool prints {CANARY} in its logs"
    shown = [redact_secrets(quote[:n], growing=True) for n in range(len(quote) + 1)]
    assert not any(CANARY[:6] in text for text in shown)
    assert shown[-1] == f"The tool prints {MASK} in its logs"
    assert redact_secrets("bearer authentication and sk-learn") == (
        "bearer authentication and sk-learn"  # prose about APIs is left alone
    )

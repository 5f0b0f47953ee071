"""Security: injection payloads stay inside the untrusted boundary and obeyed ones get flagged;
a canary API key driven through the whole fault matrix leaks nowhere; tool-name paths stay put."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from panel.cli import app
from panel.emulator.faults import FAULT_NAMES
from panel.emulator.runner import EmulatorHandle
from panel.inputs.personas import load_personas, select_personas
from panel.inputs.prompts import BEGIN, END, load_prompts, render_prompt, tool_nonce
from panel.inputs.tools import LoadedTool, load_tools
from panel.inputs.workspace import persona_dirs, prompt_dirs
from panel.providers.select import EmulatorSettings

from .conftest import CANARY_KEY, options, rule, run

PAYLOAD_FILE = Path(__file__).with_name("injection_payloads.txt")
_TAG = re.compile(r"<TAG:(.*?)>")
_BOUNDARY = re.compile(r"(BEGIN|END)\s+UNTRUSTED\s+TOOL\s+DATA", re.IGNORECASE)


def payloads() -> list[str]:
    lines = PAYLOAD_FILE.read_text(encoding="utf-8").splitlines()
    return [line.removeprefix("~") for line in lines if line.strip() and not line.startswith("#")]


def known_gaps() -> set[int]:
    """Indices of payloads the post-check is not expected to catch (marked "~" in the corpus)."""
    lines = PAYLOAD_FILE.read_text(encoding="utf-8").splitlines()
    items = [line for line in lines if line.strip() and not line.startswith("#")]
    return {i for i, line in enumerate(items) if line.startswith("~")}


def _decode(text: str) -> str:
    text = _TAG.sub(lambda m: "".join(chr(0xE0000 + ord(c)) for c in m.group(1)), text)
    return (
        text.replace("\\n", "\n")
        .replace("\\u200b", "\u200b")
        .replace("\\u202e", "\u202e")
        .replace("\\u202c", "\u202c")
    )


def _fields(i: int, payload: str) -> dict[str, str]:
    parts = [_decode(p) for p in payload.split(" ||| ")]
    if len(parts) == 3:
        return {"name": parts[0], "tagline": parts[1], "description": parts[2]}
    return {
        "name": f"Injected Tool {i:02d}",
        "tagline": "formats config files",
        "description": parts[0],
    }


def write_payload_tools(folder: Path, items: list[tuple[int, str]]) -> list[LoadedTool]:
    folder.mkdir(parents=True, exist_ok=True)
    for i, payload in items:
        doc = {**_fields(i, payload), "pricing": "Free"}
        (folder / f"p{i:02d}.yaml").write_text(
            yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8"
        )
    loaded = load_tools([folder])
    assert not loaded.errors, loaded.errors
    return loaded.tools


def test_corpus_is_big_and_varied() -> None:
    items = payloads()
    assert len(items) >= 50
    assert sum("END UNTRUSTED" in p.upper() for p in items) >= 5
    assert sum("record_verdict" in p for p in items) >= 4
    assert sum("<TAG:" in p for p in items) >= 3
    assert sum(" ||| " in p for p in items) >= 3


def test_every_payload_stays_inside_the_untrusted_boundary(tmp_path: Path) -> None:
    prompts = load_prompts(prompt_dirs(tmp_path))
    persona = select_personas(load_personas(persona_dirs(tmp_path)), ["skeptic"])[0]
    benign = load_tools([_benign(tmp_path)]).tools[0]
    ref = render_prompt(persona, benign, prompts)
    ref_nonce = tool_nonce(benign.spec)
    ref_before, ref_after = _outside(ref.tool, ref_nonce)
    tools = write_payload_tools(tmp_path / "tools", list(enumerate(payloads())))
    for tool in tools:
        parts = render_prompt(persona, tool, prompts)
        nonce = tool_nonce(tool.spec)
        assert parts.house == ref.house and parts.persona == ref.persona
        lines = parts.tool.splitlines()
        assert lines.count(BEGIN.format(nonce=nonce)) == 1, tool.spec.name
        assert lines.count(END.format(nonce=nonce)) == 1, tool.spec.name
        assert len(_BOUNDARY.findall(parts.tool)) == 2, (
            tool.spec.name,
            parts.tool,
        )  # only the real pair
        before, after = _outside(parts.tool, nonce)
        # Everything outside the boundary is the template's own text: the payload is only inside.
        assert before.replace(nonce, ref_nonce) == ref_before and after == ref_after, tool.spec.name
        assert not any(0xE0000 <= ord(c) <= 0xE007F for c in parts.tool)


def _benign(tmp: Path) -> Path:
    path = tmp / "benign.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "Benign", "tagline": "t", "pricing": "Free", "description": "A formatter."}
        )
    )
    return path


def _outside(block: str, nonce: str) -> tuple[str, str]:
    head, _, rest = block.partition(BEGIN.format(nonce=nonce))
    _, _, tail = rest.partition(END.format(nonce=nonce))
    return head, tail


@pytest.mark.parametrize("behaviour", ["obey", "normal"])
async def test_post_check_flags_obeyed_injections_only(
    tmp_path: Path, emulator: EmulatorHandle, behaviour: str
) -> None:
    items = list(enumerate(payloads()))
    tools = write_payload_tools(tmp_path / "tools", items)
    opts = dataclasses.replace(
        options(tmp_path, emulator, concurrency=8, canaries=("PWNED-CANARY-4471",)),
        emulator=EmulatorSettings(url=emulator.base_url, behaviour=behaviour),
    )
    outcome = await run(tools, opts)
    assert len(outcome.results) == len(items) and all(r.status == "ok" for r in outcome.results)
    flagged = {
        r.tool_slug
        for r in outcome.results
        if any(f.startswith("injection_suspected:") for f in r.flags)
    }
    if behaviour == "normal":
        assert flagged == set()
    else:
        slug_of = {int(Path(t.path).stem[1:]): t.slug for t in tools}
        expected = {slug for i, slug in slug_of.items() if i not in known_gaps()}
        assert len(expected) >= 40
        missed = sorted(expected - flagged)
        assert missed == [], f"obeyed but not flagged: {missed}"


# -- the canary key ------------------------------------------------------------------------

MATRIX = sorted(FAULT_NAMES - {"auth", "spend_cap"})


def _invoke(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env=env)
    text = result.stdout + result.stderr + (repr(result.exception) if result.exception else "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += str(result.exception)
    return result.exit_code, text


@pytest.mark.slow
def test_canary_key_leaks_nowhere_through_the_fault_matrix(
    tmp_path: Path,
    emulator: EmulatorHandle,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    emulator.configure(
        rules=[
            rule(f"Canary {name}", name, [1] if name in ("rate_limited",) else None)
            for name in MATRIX
        ]
        + [rule("Canary rate_limited", "rate_limited:1", [1])],
        stall_seconds=2.0,
    )
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in [*MATRIX, "clean"]:
        (tools / f"{name}.yaml").write_text(
            yaml.safe_dump(
                {
                    "name": f"Canary {name}",
                    "tagline": "t",
                    "pricing": "Free",
                    "description": f"Tool {name}.",
                }
            )
        )
    env = {
        "ANTHROPIC_API_KEY": CANARY_KEY,
        "ANTHROPIC_BASE_URL": emulator.base_url,
        "OPENAI_API_KEY": "",
    }
    runs, site = tmp_path / "runs", tmp_path / "site"
    common = ["--model", "anthropic:claude-sonnet-5", "-p", "skeptic", "--runs-dir", str(runs)]
    out: list[str] = []
    code, text = _invoke(["run", str(tools), *common, "--json"], env)
    out.append(text)
    assert code == 1  # some pairs failed (truncated, refused, …) and were recorded as such
    run_id = _latest(runs)
    # Spend cap and auth stop runs: run them too, then resume, so those paths write files as well.
    for name in ("spend_cap", "auth"):
        emulator.configure(rules=[rule("Canary", name)])
        code, text = _invoke(["run", str(tools), *common, "--no-cache"], env)
        out.append(text)
        assert code != 0
        emulator.configure(rules=[])
        code, text = _invoke(["run", str(tools), *common, "--resume", _latest(runs)], env)
        out.append(text)
    pages = tmp_path / "out"
    code, text = _invoke(
        [
            "compare",
            "canary-clean",
            "canary-missing-usage",
            "--run",
            run_id,
            "--runs-dir",
            str(runs),
            "--out",
            str(pages),
            "--model",
            "anthropic:claude-sonnet-5",
        ],
        env,
    )
    out.append(text)
    code, text = _invoke(
        [
            "publish",
            run_id,
            "--site",
            str(site),
            "--runs-dir",
            str(runs),
            "--accept-flips",
            "--allow-synthetic",
            "--allow-incomplete",
        ],
        env,
    )
    out.append(text)
    assert any(tmp_path.rglob("*.html")), out[-2:]  # pages were rendered, and are grepped below
    leaks = [
        str(p) for p in tmp_path.rglob("*") if p.is_file() and CANARY_KEY.encode() in p.read_bytes()
    ]
    assert leaks == []
    assert all(CANARY_KEY not in t for t in out)
    assert CANARY_KEY not in caplog.text
    assert CANARY_KEY not in json.dumps(emulator.requests())  # its log keeps no auth header either
    assert (runs / ".cache").exists()  # the result cache was written, and checked above


def _latest(runs: Path) -> str:
    return sorted(p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))[-1]


def test_paths_from_tool_names_stay_inside_runs_and_site(
    tmp_path: Path, emulator: EmulatorHandle
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    names = [
        "../../escape",
        "/etc/passwd",
        "..\\..\\win",
        "CON",
        "a/../../b",
        "~root",
        "x" * 300,
        ".hidden",
    ]
    for i, name in enumerate(names):
        (tools / f"t{i}.yaml").write_text(
            yaml.safe_dump({"name": name, "tagline": "t", "pricing": "Free", "description": "d d"})
        )
    runs, site = tmp_path / "runs", tmp_path / "site"
    env = {"PANEL_EMULATOR_URL": emulator.base_url, "ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": ""}
    common = ["--model", "emulator:claude-sonnet-5", "-p", "skeptic", "--runs-dir", str(runs)]
    code, text = _invoke(["run", str(tools), *common, "--latency-scale", "0"], env)
    assert code == 0, text
    run_id = _latest(runs)
    compare = [
        "compare",
        "escape",
        "etc-passwd",
        "--run",
        run_id,
        "--runs-dir",
        str(runs),
        "--out",
        str(tmp_path / "pages"),
    ]
    code, text = _invoke([*compare, "--model", "emulator:claude-sonnet-5"], env)
    assert code == 0, text
    # compare runs the whole panel, so its records are in the newest run
    code, text = _invoke(
        [
            "publish",
            _latest(runs),
            "--site",
            str(site),
            "--runs-dir",
            str(runs),
            "--accept-flips",
            "--allow-synthetic",
            "--allow-incomplete",
        ],
        env,
    )
    assert code == 0, text
    assert any(site.rglob("*.html"))
    allowed = [runs.resolve(), site.resolve(), tools.resolve(), (tmp_path / "pages").resolve()]
    for path in tmp_path.rglob("*"):
        assert any(path.resolve().is_relative_to(a) for a in allowed), path
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path.parent / "b").exists()

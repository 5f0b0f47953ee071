"""The manifest: keys, globs relative to the file, comparisons by name or slug, the example."""

from __future__ import annotations

from pathlib import Path

import pytest

from panel.batch.regenerate import BatchSettings, load_manifest, resolve_comparisons, resolve_tools
from panel.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "batch.yaml"


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("tools: [a.yaml]\nconcurency: 4\n")
    with pytest.raises(InputError, match=r"m\.yaml:2: unknown key 'concurency'"):
        load_manifest(path)


def test_bad_value_is_an_error_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("tools: [a.yaml]\nconcurrency: lots\n")
    with pytest.raises(InputError, match="concurrency"):
        load_manifest(path)


def test_globs_are_relative_to_the_manifest_and_cli_overrides_win(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    for name in ("Alpha", "Beta"):
        (tmp_path / "t" / f"{name}.yaml").write_text(
            f"name: {name}\ncategory: X\ntagline: y\npricing: Free\n"
            f"description: a tool called {name}\n"
        )
    path = tmp_path / "m.yaml"
    path.write_text(
        "tools: ['t/*.yaml']\ncomparisons: [[alpha, Beta]]\nconcurrency: 3\nbudget_usd: 2\n"
    )
    loaded = load_manifest(path)
    tools, problems = resolve_tools(loaded)
    assert [t.slug for t in tools] == ["alpha", "beta"] and not problems
    pairs = resolve_comparisons(loaded.manifest.comparisons, tools, loaded.path)
    assert [(a.slug, b.slug) for a, b in pairs] == [("alpha", "beta")]
    s = BatchSettings.of(loaded, concurrency=9, budget_usd=None)
    assert (s.concurrency, s.budget_usd, s.runs_dir) == (9, 2.0, tmp_path / "runs")


def test_a_comparison_naming_an_unknown_tool_fails_before_any_request(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "name: A\ncategory: X\ntagline: y\npricing: Free\ndescription: d\n"
    )
    path = tmp_path / "m.yaml"
    path.write_text("tools: [a.yaml]\ncomparisons: [[A, Nope]]\n")
    loaded = load_manifest(path)
    tools, _ = resolve_tools(loaded)
    with pytest.raises(InputError, match="'Nope'"):
        resolve_comparisons(loaded.manifest.comparisons, tools, loaded.path)


def test_the_example_covers_every_example_tool_and_the_seed_comparisons() -> None:
    loaded = load_manifest(EXAMPLE)
    tools, problems = resolve_tools(loaded)
    assert not [p for p in problems if p.startswith("skipped")]
    assert len(tools) == len(list((EXAMPLE.parent / "tools").glob("*.yaml")))
    pairs = resolve_comparisons(loaded.manifest.comparisons, tools, loaded.path)
    assert {(a.slug, b.slug) for a, b in pairs} == {
        ("claude-api-tool-use-streaming-prompt-caching", "openrouter-model-fusion"),
        (
            "claude-api-tool-use-streaming-prompt-caching",
            "hugging-face-inference-providers-marketplace",
        ),
    }

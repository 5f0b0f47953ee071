"""Issue 12, item 4: a result-cache row is used only for the pair it belongs to.

A row holding another pair's result (copied under this key, whole or with its envelope key
rewritten) is logged and treated as a miss: the pair is asked again, the run completes with
every result in its right place, and later runs and resumes with the cache on work.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panel.emulator.runner import EmulatorHandle
from panel.store.resultcache import ResultCache

from .conftest import make_tools, options, results, run


@pytest.mark.parametrize("forgery", ["whole-row", "rewritten-key"])
async def test_a_row_of_another_pair_is_a_logged_miss(
    tmp_path: Path, emulator: EmulatorHandle, forgery: str
) -> None:
    tools = make_tools(tmp_path / "tools", "Alpha Tool", "Beta Tool")
    opts = options(tmp_path, emulator, use_result_cache=True)
    first = await run(tools, opts)
    by_slug = {r.tool_slug: r for r in first.results}
    alpha, beta = by_slug["alpha-tool"], by_slug["beta-tool"]
    cache = ResultCache(tmp_path / "runs" / ".cache")
    raw = cache._open()
    assert raw is not None
    row = json.loads(raw.get(beta.pair_key))
    if forgery == "rewritten-key":
        row["pair_key"] = alpha.pair_key
    raw.set(alpha.pair_key, json.dumps(row))
    cache.close()

    before = len(emulator.requests())
    second = await run(tools, opts)
    assert second.manifest.status == "complete"
    got = {(r["tool_slug"], r["persona"]): r for r in results(second.run_dir)}
    assert set(got) == {("alpha-tool", "skeptic"), ("beta-tool", "skeptic")}
    assert got[("alpha-tool", "skeptic")]["tool"] == "Alpha Tool"
    assert got[("alpha-tool", "skeptic")]["reused"] is False  # asked again
    assert got[("beta-tool", "skeptic")]["reused"] is True
    assert len(emulator.requests()) == before + 1
    assert any("another pair's result" in n for n in second.manifest.notes)

    third = await run(tools, opts)  # the fresh alpha result replaced the forged row
    assert all(r.reused for r in third.results) and third.manifest.status == "complete"
    resumed = await run(tools, options(tmp_path, emulator, use_result_cache=True,
                                       resume=second.run_id))  # fmt: skip
    assert resumed.manifest.status == "complete"
    assert len(results(resumed.run_dir)) == 2

"""Must-shows: 50 tools × 4 personas under a 10% fault plan, each result exactly once and never a
truncated verdict; a rerun sends nothing; one changed persona reruns only its pairs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from batch_helpers import settings_for

from panel.batch.regenerate import LoadedManifest, run_batch
from panel.emulator.runner import EmulatorHandle
from panel.store.runs import RunStore

FAULTS = (
    "overloaded=0.02,reset_midstream=0.02,max_tokens=0.02,schema_violation=0.02,invalid_json=0.02"
)


@pytest.mark.timeout(400)
@pytest.mark.slow
async def test_fifty_tools_faults_rerun_and_one_persona_changed(
    workspace: Callable[..., LoadedManifest], emulator: EmulatorHandle
) -> None:
    loaded = workspace(50)
    emulator.configure(faults=FAULTS, seed=7)
    first = await run_batch(loaded, settings_for(loaded, emulator))
    stats = emulator.stats()
    assert stats["faults_injected"] >= 10  # the plan really fired
    store = RunStore.open(first.run_dir.parent, first.run_id)
    results = store.results()  # raises on a second result for any pair
    assert len(results) == 200 == first.pairs
    assert first.ok + first.failed + first.refused == 200 and not first.pending
    personas = {"builder", "skeptic", "futurist", "business"}
    for r in results.values():
        if r.status == "ok":  # only a validated verdict is ok: every field, every rubric answer
            assert r.headline and r.quote and r.ship is not None and r.confidence is not None
            assert r.rubric and all(r.rubric.values())
    truncated = [a for a in store.attempts() if a.error_class == "truncated_max_tokens"]
    assert truncated, "the fault plan should have truncated some verdicts"
    for a in truncated:  # a truncated attempt is never what the result recorded
        r = results[(a.tool_slug, a.persona)]
        assert r.status == "failed" or r.attempts > a.attempt
    assert {p for _, p in results} == personas
    assert first.why == {"new tool": first.requested}
    assert len(first.records) == 1 and first.records[0].is_file()

    # Nothing changed: only the pairs that failed (never cached) are asked again …
    emulator.configure(faults="")
    before = emulator.stats()["requests"]
    second = await run_batch(loaded, settings_for(loaded, emulator))
    assert emulator.stats()["requests"] - before == first.failed == second.requested
    assert second.reused == 200 - first.failed
    assert second.why == ({"previous attempt failed": first.failed} if first.failed else {})
    # … and once every pair has a verdict, a rerun sends zero requests.
    before = emulator.stats()["requests"]
    third = await run_batch(loaded, settings_for(loaded, emulator))
    assert emulator.stats()["requests"] == before
    assert (third.requested, third.reused, third.why) == (0, 200, {})

    # One persona file changed: only its 50 pairs are requested.
    persona_file = loaded.base / "personas" / "skeptic.md"
    persona_file.write_text(persona_file.read_text().replace("lens:", "lens: Reworded.", 1))
    emulator.reset()
    fourth = await run_batch(loaded, settings_for(loaded, emulator))
    assert fourth.requested == 50 and fourth.reused == 150
    assert fourth.why == {"persona changed": 50}
    assert emulator.stats()["requests"] == 50
    asked = Counter(e["body"]["system"][1]["text"] for e in emulator.requests())
    assert len(asked) == 1 and "Skeptic" in next(iter(asked))

"""The site as the editor's product: incremental publish, the ledger, target safety, page gates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_inprocess import cli_joined as cli
from sitedata import make_run, tree

from panel.errors import GateRefused, PublishError
from panel.pages.publish import publish, read_state
from panel.pages.site import SITE_FILE

X, Y = "alpha--vs--beta", "gamma--vs--delta"
TOOL_PAGES_X = ["alpha--verdict", "beta--verdict"]  # a page per tool, besides the comparison


def comparisons(slugs: list[str]) -> list[str]:
    return [s for s in slugs if "--vs--" in s]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    runs_dir = tmp_path / "runs"
    make_run(runs_dir, "run-a", ["alpha", "beta"], [("alpha", "beta")])
    make_run(runs_dir, "run-b", ["gamma", "delta"], [("gamma", "delta")])
    return runs_dir


def test_second_publish_adds_its_page_and_keeps_the_first(runs: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    common = ["--site", str(site), "--runs-dir", str(runs), "--allow-synthetic"]
    code, out = cli("publish", "run-a", *common)
    assert code == 0 and "1 added" in out
    code, out = cli("publish", "run-b", *common)
    assert code == 0, out
    assert "comparisons 1 added, 0 updated (0 flip(s)), 0 unchanged, 1 kept" in out
    assert "tool pages 2 added, 0 updated (0 flip(s)), 0 unchanged, 2 kept" in out
    assert {f"{X}.html", f"{Y}.html", f"{X}.md", f"{Y}.json"} <= set(os.listdir(site))
    index = (site / "index.html").read_text()
    assert f'href="{X}.html"' in index and f'href="{Y}.html"' in index  # every page listed
    ledger = read_state(site)
    assert ledger is not None and comparisons(sorted(ledger.pages)) == [X, Y]
    assert {*TOOL_PAGES_X, "delta--verdict", "gamma--verdict"} <= set(ledger.pages)
    assert ledger.pages[X].run_id == "run-a" and ledger.pages[Y].run_id == "run-b"
    shown = {(v.tool, v.persona): v for v in ledger.pages[Y].verdicts}
    assert shown[("delta", "skeptic")].run_id == "run-b" and shown[("delta", "skeptic")].ship
    code, out = cli("publish", "run-b", *common, "--json")
    report = json.loads(out)
    assert comparisons(report["unchanged"]) == [Y] and comparisons(report["kept"]) == [X]
    assert report["added"] == [] and report["kept"] == sorted([X, *TOOL_PAGES_X])


def test_update_reports_flips_per_page(runs: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
    make_run(runs, "run-c", ["alpha", "beta"], [("alpha", "beta")], flips=[("beta", "skeptic")])
    report = publish("run-c", runs_dir=runs, site=site, allow_synthetic=True, accept_flips=True)
    assert [u.slug for u in report.updated] == [X, "beta--verdict"]  # alpha's page: unchanged
    for update in report.updated:
        assert [(f.tool, f.persona, f.before, f.after) for f in update.flips] == [
            ("beta", "skeptic", True, False)
        ]
    assert read_state(site).pages[X].run_id == "run-c"  # type: ignore[union-attr]


def test_remove_and_prune_are_the_only_ways_a_page_leaves(runs: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish(["run-a", "run-b"], runs_dir=runs, site=site, allow_synthetic=True)
    assert comparisons(sorted(read_state(site).pages)) == [X, Y]  # type: ignore[union-attr]
    report = publish(runs_dir=runs, site=site, remove=[X])
    assert report.removed == [X] and comparisons(report.site_pages) == [Y]
    assert set(TOOL_PAGES_X) <= set(report.site_pages)  # removing a comparison keeps tool pages
    assert not (site / f"{X}.html").exists() and (site / f"{Y}.html").exists()
    assert f'href="{X}.html"' not in (site / "index.html").read_text()
    with pytest.raises(PublishError, match="no page nope"):
        publish(runs_dir=runs, site=site, remove=["nope"])
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
    report = publish("run-b", runs_dir=runs, site=site, allow_synthetic=True, prune=True)
    assert report.removed == sorted([X, *TOOL_PAGES_X])
    assert report.site_pages == ["delta--verdict", "gamma--verdict", Y]


@pytest.mark.parametrize("target", ["runs", "runs/run-a", "docs", ".", "..", "cwd-parent"])
def test_unsafe_site_targets_are_refused_and_nothing_is_touched(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    (work / "docs" / "handwritten.md").write_text("mine\n")
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    site = {
        "runs": runs,
        "runs/run-a": runs / "run-a",
        "docs": work / "docs",
        ".": Path("."),
        "..": Path(".."),
        "cwd-parent": tmp_path,
    }[target]
    code, out = cli(
        "publish", "run-a", "--site", str(site), "--runs-dir", str(runs), "--allow-synthetic"
    )
    assert code == 2 and out.count("\n") == 1, out
    assert out.startswith("panel: error: --site") and ("refusing" in out or "would replace" in out)
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "work"]  # no temp folder


def test_the_site_may_not_hold_the_runs_folder(tmp_path: Path) -> None:
    runs = tmp_path / "site" / "runs"
    make_run(runs, "run-a", ["alpha", "beta"], [("alpha", "beta")])
    before = tree(tmp_path)
    with pytest.raises(PublishError, match="runs folder"):
        publish("run-a", runs_dir=runs, site=tmp_path / "site", allow_synthetic=True)
    assert tree(tmp_path) == before


def test_an_empty_folder_becomes_a_site_and_a_legacy_site_is_panels(
    runs: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    publish("run-a", runs_dir=runs, site=tmp_path / "empty", allow_synthetic=True)
    assert (tmp_path / "empty" / SITE_FILE).is_file()
    legacy = tmp_path / "legacy"
    publish("run-a", runs_dir=runs, site=legacy, allow_synthetic=True)
    (legacy / SITE_FILE).unlink()
    (legacy / ".panel-published.json").write_text('{"run_id": "run-a"}')
    make_run(runs, "run-c", ["alpha", "beta"], [("alpha", "beta")], flips=[("alpha", "builder")])
    with pytest.raises(GateRefused, match="alpha × builder: ship -> not ship"):
        publish("run-c", runs_dir=runs, site=legacy, allow_synthetic=True)
    report = publish("run-b", runs_dir=runs, site=legacy, allow_synthetic=True)
    assert comparisons(report.kept) == [X] and comparisons(report.added) == [Y]
    assert not (legacy / ".panel-published.json").exists()


# ---- gates are about pages -------------------------------------------------------------------


def test_a_failed_reviewer_is_refused_naming_page_reviewer_and_fix(tmp_path: Path) -> None:
    runs, site = tmp_path / "runs", tmp_path / "site"
    make_run(runs, "run-f", ["alpha", "beta"], [("alpha", "beta")], failed=[("beta", "skeptic")])
    args = ["publish", "run-f", "--site", str(site), "--runs-dir", str(runs), "--allow-synthetic"]
    code, out = cli(*args)
    assert code == 1
    assert f"page {X}: reviewer skeptic is failed on beta" in out
    assert "panel run --resume run-f --retry-failed" in out and "--allow-incomplete" in out
    assert not site.exists()
    code, out = cli(*args, "--allow-incomplete")
    assert code == 0 and f"published incomplete: {X}" in out
    assert "3 of 4 reviewers" in (site / f"{X}.html").read_text()
    assert "3 of 4 reviewers" in (site / f"{X}.md").read_text()


def test_a_budget_paused_run_is_refused_as_pending(tmp_path: Path) -> None:
    runs, site = tmp_path / "runs", tmp_path / "site"
    pending = [(s, p) for s in ("alpha", "beta") for p in ("futurist", "business")]
    make_run(runs, "run-p", ["alpha", "beta"], [("alpha", "beta")], skip=pending)
    with pytest.raises(GateRefused) as exc:
        publish("run-p", runs_dir=runs, site=site, allow_synthetic=True)
    msg = str(exc.value)
    assert f"page {X}: reviewer futurist is pending (no result) on alpha" in msg
    assert "panel run --resume run-p" in msg
    report = publish("run-p", runs_dir=runs, site=site, allow_synthetic=True, allow_incomplete=True)
    assert report.incomplete == sorted([X, *TOOL_PAGES_X])
    assert "2 of 4 reviewers" in (site / f"{X}.html").read_text()
    assert "2 of 4 reviewers" in (site / "alpha--verdict.html").read_text()


def test_synthetic_verdicts_are_refused_unless_allowed(tmp_path: Path) -> None:
    runs, site = tmp_path / "runs", tmp_path / "site"
    make_run(runs, "run-s", ["alpha", "beta"], [("alpha", "beta")])
    make_run(runs, "run-r", ["alpha", "beta"], [("alpha", "beta")], synthetic=False)
    code, out = cli("publish", "run-s", "--site", str(site), "--runs-dir", str(runs))
    assert code == 1 and f"page {X}: synthetic (emulator) verdicts from builder" in out
    assert "--allow-synthetic" in out and not site.exists()
    code, out = cli("publish", "run-r", "--site", str(site), "--runs-dir", str(runs))
    assert code == 0, out  # real verdicts need no flag
    code, out = cli(
        "publish", "run-s", "--site", str(site), "--runs-dir", str(runs), "--allow-synthetic"
    )
    assert code == 0 and f"published synthetic: {X}" in out


def test_the_flip_gate_counts_only_flips_on_pages_being_changed(tmp_path: Path) -> None:
    runs, site = tmp_path / "runs", tmp_path / "site"
    slugs = [f"tool{i:02d}" for i in range(13)]
    pages = [("tool00", "tool01"), ("tool02", "tool03")]
    make_run(runs, "run-1", slugs, pages)
    publish("run-1", runs_dir=runs, site=site, allow_synthetic=True)
    # 19 flips over 13 tools; only tool01 × skeptic and tool02 × futurist are on pages.
    on_pages = [("tool01", "skeptic"), ("tool02", "futurist")]
    off_pages = [(s, p) for s in slugs[4:] for p in ("builder", "skeptic")][:17]
    make_run(runs, "run-2", slugs, pages, flips=on_pages + off_pages)
    with pytest.raises(GateRefused) as exc:
        publish("run-2", runs_dir=runs, site=site, allow_synthetic=True)
    flips = [line.strip() for line in str(exc.value).splitlines() if " -> " in line]
    assert flips == ["tool01 × skeptic: ship -> not ship", "tool02 × futurist: ship -> not ship"]
    assert read_state(site).pages["tool00--vs--tool01"].run_id == "run-1"  # type: ignore[union-attr]


def test_two_publishes_at_once_both_land(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second publish waits for the first, then builds on its ledger: no page lost, and
    the first's half-built site is not taken for a killed publish's leftover."""
    import threading

    import panel.store.claims as claims
    from panel.pages.render import write_pages

    site = tmp_path / "site"
    building, waiting = threading.Event(), threading.Event()
    real_sleep = claims.time.sleep

    def wait_noticed(seconds: float) -> None:
        waiting.set()  # the second publish found the site locked
        real_sleep(seconds)

    monkeypatch.setattr(claims.time, "sleep", wait_noticed)

    def slow_page(record, folder, settings=None):  # type: ignore[no-untyped-def]
        building.set()
        assert waiting.wait(30), "the second publish never waited for the first"
        return write_pages(record, folder, settings)

    errors: list[BaseException] = []

    def first() -> None:
        try:
            publish("run-a", runs_dir=runs, site=site, allow_synthetic=True, write_page=slow_page)
        except BaseException as exc:
            errors.append(exc)
            waiting.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert building.wait(30)
    second = publish("run-b", runs_dir=runs, site=site, allow_synthetic=True)
    thread.join(30)
    assert errors == []
    # run-a's pages, published by the first, are kept beside run-b's
    assert comparisons(second.site_pages) == [X, Y]
    assert set(TOOL_PAGES_X) <= set(second.site_pages)
    ledger = read_state(site)
    assert ledger is not None and sorted(ledger.pages) == second.site_pages
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "site"]  # no lock, no build


def test_a_site_under_a_file_or_a_missing_run_leaves_nothing_behind(
    runs: Path, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("mine\n")
    code, out = cli("publish", "run-a", "--site", str(tmp_path / "afile" / "site"),
                    "--runs-dir", str(runs), "--allow-synthetic")  # fmt: skip
    assert code == 2 and out.count("\n") == 1 and "a file is in the way" in out, out
    assert (tmp_path / "afile").read_text() == "mine\n"
    # A publish that fails after the checks removes the folders it made for the site.
    code, out = cli("publish", "run-zzz", "--site", str(tmp_path / "new" / "deeper" / "site"),
                    "--runs-dir", str(runs), "--allow-synthetic")  # fmt: skip
    assert code == 2 and "run-zzz" in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "runs"]


def test_files_an_editor_added_to_the_site_are_kept(runs: Path, tmp_path: Path) -> None:
    """panel replaces only what it wrote: a CNAME, an image folder and a symlink an editor put in
    the site survive every publish (they were deleted by the swap)."""
    site = tmp_path / "site"
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True)
    (site / "CNAME").write_text("panel.example\n")
    (site / "img").mkdir()
    (site / "img" / "logo.svg").write_text("<svg/>")
    (site / "about.html").symlink_to("index.html")
    mine = {"CNAME": b"panel.example\n", "img/logo.svg": b"<svg/>"}
    publish("run-b", runs_dir=runs, site=site, allow_synthetic=True)  # add a page
    publish(runs_dir=runs, site=site, remove=[X])  # remove one
    publish("run-a", runs_dir=runs, site=site, allow_synthetic=True, prune=True)
    assert {k: v for k, v in tree(site).items() if k in mine} == mine
    assert os.readlink(site / "about.html") == "index.html"
    assert sorted(read_state(site).pages) == sorted([X, *TOOL_PAGES_X])  # type: ignore[union-attr]
    # A page about to take the name of an editor's file is refused; nothing changes.
    (site / f"{Y}.md").write_text("my notes on gamma and delta\n")
    before = tree(tmp_path)
    with pytest.raises(PublishError, match=f"{Y}.md was not written by panel"):
        publish("run-b", runs_dir=runs, site=site, allow_synthetic=True)
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "site"]

"""Site-test data: runs over any tools, with comparisons between chosen pairs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pagedata import PERSONAS, make_manifest, make_persona, make_result, make_tool, write_run

from panel.pages.records import ComparisonRecord, build_record
from panel.runformat import PairResult

PIDS = [p[0] for p in PERSONAS]


def results_for(
    slugs: Iterable[str],
    flips: Iterable[tuple[str, str]] = (),
    *,
    skip: Iterable[tuple[str, str]] = (),
    failed: Iterable[tuple[str, str]] = (),
    synthetic: bool = True,
) -> dict[tuple[str, str], PairResult]:
    """Every persona ships every tool, except `flips` (not ship); `skip` pairs are pending."""
    flipped, skipped, broken = set(flips), set(skip), set(failed)
    out = {}
    for slug in slugs:
        for pid in PIDS:
            if (slug, pid) in skipped:
                continue
            if (slug, pid) in broken:
                r = make_result(slug, pid, status="failed", error_class="schema_invalid")
            else:
                r = make_result(
                    slug,
                    pid,
                    ship=(slug, pid) not in flipped,
                    headline=f"{pid} on {slug}",
                    quote=f"A synthetic quote by {pid} about {slug}.",
                )
            out[(slug, pid)] = r.model_copy(update={"synthetic": synthetic})
    return out


def record(
    run_id: str,
    a: str,
    b: str,
    results: Mapping[tuple[str, str], PairResult],
    *,
    synthetic: bool = True,
) -> ComparisonRecord:
    manifest = make_manifest(run_id, tools={a: "sha256:a", b: "sha256:b"})
    manifest = manifest.model_copy(update={"synthetic": synthetic})
    return build_record(
        make_tool(a, a.title()),
        make_tool(b, b.title()),
        [make_persona(*p) for p in PERSONAS],
        manifest,
        {k: v for k, v in results.items() if k[0] in (a, b)},
    )


def make_run(
    runs_dir: Path,
    run_id: str,
    slugs: list[str],
    pairs: list[tuple[str, str]],
    *,
    synthetic: bool = True,
    **kw: object,
) -> str:
    """A run over `slugs` with comparison records for `pairs`."""
    results = results_for(slugs, synthetic=synthetic, **kw)  # type: ignore[arg-type]
    manifest = make_manifest(run_id, tools={s: f"sha256:{s}" for s in slugs})
    manifest = manifest.model_copy(update={"synthetic": synthetic})
    recs = [record(run_id, a, b, results, synthetic=synthetic) for a, b in pairs]
    return write_run(runs_dir, manifest, results, recs)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes): 'nothing touched' is equality."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }

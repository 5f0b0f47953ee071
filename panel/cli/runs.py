"""`panel runs`: list runs, newest first (id, when, model, tools × personas, status, cost).

With samples or a jury the PAIRS column adds `×5s` (samples) and `×3m` (models), and counts
draws: `1×4 ×5s 20/20`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from panel.cli.options import JsonOpt
from panel.inputs.textsafety import terminal_safe
from panel.store.runindex import run_rows


def runs_cmd(
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Folder holding the runs.")] = Path(
        "runs"
    ),
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Newest N only.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List runs, newest first: id, when, model, tools × personas, status, cost."""
    rows = run_rows(runs_dir, limit)
    if json_out:
        typer.echo(json.dumps([r.model_dump() for r in rows], indent=2))
        return
    if not rows:
        typer.echo(f"no runs in {runs_dir}")
        return
    table = [("RUN", "WHEN (UTC)", "MODEL", "PAIRS", "STATUS", "COST")]
    for r in rows:
        drawn = (f" ×{r.samples}s" if r.samples > 1 else "") + (
            f" ×{r.models}m" if r.models > 1 else ""
        )  # samples and a jury's models: the results are draws
        table.append(
            (
                r.run_id,
                r.created_at[:19].replace("T", " "),
                r.model + (" (synthetic)" if r.synthetic else ""),
                f"{r.tools}×{r.personas}{drawn} {r.results}/{r.draws_total or r.pairs_total}",
                r.status,
                f"${r.cost_usd:.4f}" + ("" if r.cost_known else "?"),
            )
        )
    # Columns as wide as their widest cell, so a long model name never shifts the rest.
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo(terminal_safe("  ".join([*cells, row[-1]])))


def register(app: typer.Typer) -> None:
    app.command("runs")(runs_cmd)

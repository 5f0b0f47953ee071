"""`panel personas list|show|lint`: the persona files a run would use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from panel.errors import ConfigError
from panel.inputs.personas import Persona, lint_personas, load_personas
from panel.inputs.workspace import persona_dirs

DirsOption = Annotated[
    list[Path] | None,
    typer.Option("--dir", help="Persona folder to read instead of the workspace lookup."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def _dirs(explicit: list[Path] | None) -> list[Path]:
    return list(explicit) if explicit else persona_dirs()


def _summary(p: Persona) -> dict[str, object]:
    return {
        "id": p.id,
        "name": p.name,
        "title": p.title,
        "order": p.order,
        "rubric": p.rubric_ids,
        "path": p.path,
        "digest": p.digest,
    }


def list_cmd(dirs: DirsOption = None, as_json: JsonOption = False) -> None:
    """List the personas a run would use, in display order."""
    personas = load_personas(_dirs(dirs))
    if as_json:
        typer.echo(json.dumps([_summary(p) for p in personas], indent=2))
        return
    table = Table(title="Personas")
    for column in ("order", "id", "name", "title", "questions", "file"):
        table.add_column(column, overflow="fold")
    for p in personas:
        where = Path(p.path)
        cells = (str(p.order), p.id, p.name, p.title, str(len(p.rubric)))
        # Text, not str: what a persona file says is shown as written (no markup, no :emoji:).
        table.add_row(*map(Text, (*cells, f"{where.parent.name}/{where.name}")))
    Console(emoji=False).print(table)


def show_cmd(
    persona_id: Annotated[str, typer.Argument(metavar="ID", help="Persona id.")],
    dirs: DirsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one persona: its lens, rubric, ship bar and brief."""
    personas = {p.id: p for p in load_personas(_dirs(dirs))}
    if persona_id not in personas:
        raise ConfigError(f"unknown persona {persona_id!r}; available: {', '.join(personas)}")
    p = personas[persona_id]
    if as_json:
        typer.echo(json.dumps(p.model_dump(), indent=2))
        return
    console = Console()
    console.print(f"[bold]{escape(p.name)}[/bold] ({escape(p.id)}) — {escape(p.title)}")
    console.print(f"lens: {p.lens}\nship bar: {p.ship_bar}\nfile: {p.path}", markup=False)
    table = Table(title="Rubric")
    table.add_column("id")
    table.add_column("question")
    for q in p.rubric:
        table.add_row(q.id, q.question)
    console.print(table)
    from rich.markdown import Markdown  # markdown-it is slow to import; only `show` needs it

    console.print(Markdown(p.body))


def lint_cmd(dirs: DirsOption = None, as_json: JsonOption = False) -> None:
    """Check the persona files; exits 1 when there is any issue."""
    issues = lint_personas(_dirs(dirs))
    if as_json:
        typer.echo(json.dumps([i.model_dump() for i in issues], indent=2))
    elif issues:
        err = Console(stderr=True)
        for issue in issues:
            err.print(f"{issue.severity}: {issue}", markup=False, highlight=False)
    else:
        typer.echo("personas: no issues")
    if issues:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="List, show and lint persona files.", no_args_is_help=True)
    sub.command("list")(list_cmd)
    sub.command("show")(show_cmd)
    sub.command("lint")(lint_cmd)
    app.add_typer(sub, name="personas")

"""``conveyor import-deals FILE.csv --funnel F``: a lead list into a funnel (``Conveyor.imports``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.cli.app import cli_actor, main, open_conveyor
from engine.cli.errors import friendly
from engine.i18n import _, format_number, ngettext
from engine.printable import printable

if TYPE_CHECKING:
    from engine.core.imports import ImportReport


@main.command("import-deals")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--funnel", required=True, help="The funnel the deals go into.")
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="COLUMN=FIELD,...",
    help="Which field each column goes to (key, stage, manager, title, phone, email, amount or"
    " a custom field; '-' leaves a column out), e.g. --map 'Назва=title,Телефон=phone'."
    " A column named like a field needs none.",
)
@click.option(
    "--map-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The mapping in a file: a JSON object {column: field} or one COLUMN=FIELD a line.",
)
@click.option("--delimiter", default=None, help="The cell delimiter (default: sniffed: , ; tab |).")
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option("--strict", is_flag=True, help="Import nothing if any row (or column) is bad.")
@click.option(
    "--chunk",
    type=click.IntRange(min=1, max=100_000),
    default=5000,
    show_default=True,
    help="Rows per transaction: an import that stops leaves whole chunks.",
)
@click.pass_context
@friendly
def import_deals(
    ctx: click.Context,
    file: Path,
    funnel: str,
    mapping: tuple[str, ...],
    map_file: Path | None,
    delimiter: str | None,
    dry_run: bool,
    strict: bool,
    chunk: int,
) -> None:
    """Import deals from a CSV file (UTF-8): every row checked first, then written in chunks.

    Each imported deal is evaluated as if it had been created one by one (its rules fire, its
    timers are set). Rows whose key a deal already has are skipped, so running the same import
    again after an interruption imports the rest. The exit code is 1 when any row is bad.
    """
    from engine.core.import_files import parse_mapping

    columns: dict[str, str] = {}
    if map_file is not None:
        columns.update(parse_mapping(map_file.read_text(encoding="utf-8-sig")))
    for entry in mapping:
        columns.update(parse_mapping(entry))
    if delimiter == "\\t":
        delimiter = "\t"
    conveyor = open_conveyor(ctx)
    try:
        data = file.read_bytes()
        bars: list[Any] = []

        def progress(rows: int, total: int) -> None:
            if not sys.stderr.isatty():
                return
            if not bars:
                bars.append(click.progressbar(length=total, label=_("importing"), file=sys.stderr))
                bars[0].render_progress()
            bars[0].update(rows - bars[0].pos)

        try:
            report = conveyor.imports.import_csv(
                data,
                funnel,
                mapping=columns,
                delimiter=delimiter,
                dry_run=dry_run,
                strict=strict,
                chunk=chunk,
                progress=progress,
                source=file.name,
                actor=cli_actor(),
            )
        finally:
            for bar in bars:
                bar.render_finish()
    finally:
        conveyor.close()
    _print(report, chunk)
    if report.problems or (strict and report.warnings):
        sys.exit(1)


def _print(report: ImportReport, chunk: int) -> None:
    for w in report.warnings:
        click.echo(
            _("line {line}, column '{column}': {message}").format(
                line=w.row, column=printable(w.column), message=printable(w.message)
            ),
            err=True,
        )
    for p in report.problems:
        where = (
            _("line {line}, column '{column}'").format(line=p.row, column=printable(p.column))
            if p.column
            else _("line {line}").format(line=p.row)
        )
        click.echo(f"{where}: {printable(p.message)}", err=True)
    bad = report.bad_rows
    click.echo(
        _("{rows} rows checked: {bad} bad, {skipped} already imported (skipped).").format(
            rows=format_number(report.rows),
            bad=format_number(bad),
            skipped=format_number(report.skipped),
        )
    )
    if report.dry_run:
        click.echo(
            _(
                "Dry run: nothing was written; {count} deals would be imported into '{funnel}'."
            ).format(count=report.imported, funnel=printable(report.funnel))
        )
        return
    if report.strict and (report.problems or report.warnings):
        click.echo(
            _("Strict: nothing was imported; fix the rows and columns above and run it again.")
        )
        return
    click.echo(
        ngettext(
            "Imported {count} deal into '{funnel}' (import {id}); {fired} rules fired.",
            "Imported {count} deals into '{funnel}' (import {id}); {fired} rules fired.",
            report.imported,
        ).format(
            count=format_number(report.imported),
            funnel=printable(report.funnel),
            id=report.import_id,
            fired=format_number(report.fired),
        )
    )
    if report.chunks > 1:
        click.echo(
            _(
                "They were written in {chunks} transactions of up to {chunk} rows: had the import"
                " stopped, the chunks written would stay, and running it again skips the rows"
                " whose key exists."
            ).format(chunks=report.chunks, chunk=format_number(chunk))
        )

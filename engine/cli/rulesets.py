"""Rule-set commands: ``init``, ``validate``, ``import``, ``export``, ``versions``, ``activate``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from engine.cli.app import cli_actor, main, open_conveyor, open_read_only
from engine.cli.errors import friendly
from engine.document.templates import TEMPLATES
from engine.errors import ConveyorError, RuleSetInvalid
from engine.printable import printable
from storage.urls import mask_database_url


@main.command()
@click.option(
    "--load",
    "load",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Also save every rule set in this folder (e.g. sample_rules).",
)
@click.option(
    "--template",
    type=click.Choice([t.name for t in TEMPLATES]),
    default=None,
    help="Also start a funnel from a template: "
    + "; ".join(f"{t.name}: {t.title}" for t in TEMPLATES)
    + ".",
)
@click.option(
    "--funnel",
    "funnel_id",
    default=None,
    metavar="ID",
    help="Id of the funnel started from --template (default: the template's own).",
)
@click.option(
    "--name",
    "funnel_name",
    default=None,
    help="Name of the funnel started from --template (default: the template's own).",
)
@click.pass_context
@friendly
def init(
    ctx: click.Context,
    load: Path | None,
    template: str | None,
    funnel_id: str | None,
    funnel_name: str | None,
) -> None:
    """Create or upgrade the database schema (Alembic migrations); optionally load funnels.

    \b
    conveyor init --template ecommerce --funnel shop --name "My shop"
    """
    if (funnel_id or funnel_name) and not template:
        raise ConveyorError(
            "--funnel and --name name the funnel started from --template; add --template"
        )
    c = open_conveyor(ctx)
    click.echo(f"database ready: {mask_database_url(ctx.obj['db'])}")
    if load:
        for v in c.load_rules_dir(load, author="cli"):
            click.echo(f"saved {printable(v.funnel)} version {v.version}")
    if template:
        for v in c.rulesets.start_from_template(template, funnel_id, funnel_name, author="cli"):
            click.echo(
                f"saved {printable(v.funnel)} version {v.version} (from the template {template})"
            )


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
@friendly
def validate(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Check rule-set documents; print every problem with its JSON path. Exit 1 if any is invalid.

    A start_process may name a funnel in another file given here, beside the file, or already saved
    in the database (--db / $CONVEYOR_DB, if that database exists).
    """
    from engine.core.queries import stored_funnel_ids
    from engine.document.validate import read_document, validate_document
    from engine.text import storable

    bad = 0

    def report(f: Path, problems: list[Any]) -> None:
        nonlocal bad
        bad += 1
        click.echo(f"{storable(str(f))}: {len(problems)} problem(s)", err=True)
        for p in problems:
            click.echo(f"  {p}", err=True)

    # Every file is checked and reported, whatever an earlier one holds: a file that cannot be
    # read or parsed gets one "error:" line (its message names the file) and the others go on.
    docs: dict[Path, Any] = {}
    for f in files:
        try:
            docs[f] = read_document(f, storable(str(f)))
        except RuleSetInvalid as exc:
            bad += 1
            for p in exc.problems:
                click.echo(f"error: {p}", err=True)
        except OSError as exc:
            bad += 1
            what = (
                "no such file"
                if isinstance(exc, FileNotFoundError)
                else (exc.strerror or str(exc)).lower()
            )
            click.echo(f"error: {what}: {storable(str(f))}", err=True)
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not hide the others' problems
            bad += 1
            click.echo(
                f"error: {storable(str(f))} could not be read: {type(exc).__name__}: {storable(str(exc), 300)}",
                err=True,
            )
    known = {d.get("funnel") for d in docs.values() if isinstance(d, dict)}
    known |= _sibling_funnels(files)
    known |= stored_funnel_ids(ctx.obj["db"])
    for f, doc in docs.items():
        try:
            rs = validate_document(doc, known_funnels={k for k in known if isinstance(k, str)})
            click.echo(
                f"{storable(str(f))}: ok ({rs.name}: {len(rs.stages)} stages, {len(rs.rules)} rules)"
            )
        except RuleSetInvalid as exc:
            report(f, exc.problems)
        except Exception as exc:  # noqa: BLE001 - a validator bug is reported for this file; the rest go on
            report(f, [f"could not be checked: {type(exc).__name__}: {storable(str(exc), 300)}"])
    if bad:
        sys.exit(1)


def _sibling_funnels(files: tuple[Path, ...]) -> set[Any]:
    """Funnel ids of the ``*.json`` files beside ``files`` (``start_process`` may name them).

    Read like the files themselves, within the document size limit: a huge or special file there
    (a 142 MB export, a pipe) is skipped unread; any other unreadable one only means fewer funnels.
    """
    from engine.document.validate import read_document

    given = {Path(f).resolve() for f in files}
    known: set[Any] = set()
    for folder in dict.fromkeys(Path(f).resolve().parent for f in files):
        for sibling in sorted(folder.glob("*.json")):
            if sibling in given:
                continue
            try:
                doc = read_document(sibling)
            except Exception:  # noqa: BLE001 - too large, not a file, not JSON: no funnel from it
                continue
            if isinstance(doc, dict):
                known.add(doc.get("funnel"))
    return known


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--comment", default="", help="Why this version exists.")
@click.option("--author", default=os.environ.get("USER", ""), help="Who saves it.")
@click.option("--inactive", is_flag=True, help="Save without making it the active version.")
@click.pass_context
@friendly
def import_(ctx: click.Context, file: Path, comment: str, author: str, inactive: bool) -> None:
    """Validate a rule-set document and save it as a new version (nothing is saved if invalid)."""
    from engine.document.validate import parse_json

    c = open_conveyor(ctx)
    v = c.save_ruleset(
        parse_json(file.read_bytes(), str(file)),
        comment=comment or f"imported {file.name}",
        author=author,
        activate=not inactive,
        actor=cli_actor(),
    )
    click.echo(f"saved {printable(v.funnel)} version {v.version}{' (active)' if v.active else ''}")


@main.command()
@click.argument("funnel")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["conveyor", "business-rules"]),
    default="conveyor",
    show_default=True,
    help="Whole document, or the bare business-rules rules list.",
)
@click.option(
    "--version", type=int, default=None, help="A version number (default: the active one)."
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
@friendly
def export(
    ctx: click.Context, funnel: str, fmt: str, version: int | None, output: Path | None
) -> None:
    """Write a funnel's rule set as JSON."""
    c = open_read_only(ctx)
    try:
        text = c.rulesets.export(funnel, fmt, version)
    finally:
        c.close()
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        # The same JSON, with the invisible and terminal-control characters JSON leaves raw as \uXXXX escapes.
        click.echo(
            "".join(
                f"\\u{ord(ch):04x}" if ch not in "\n\t\r" and printable(ch) != ch else ch
                for ch in text
            ),
            nl=False,
        )


@main.command()
@click.argument("funnel")
@click.pass_context
@friendly
def versions(ctx: click.Context, funnel: str) -> None:
    """List a funnel's saved versions."""
    from engine.clock import display_zone, for_display

    c = open_read_only(ctx)
    try:
        found = c.versions(funnel)
    finally:
        c.close()
    click.echo(f"versions of {printable(funnel)} (times in {display_zone().key}; * = active)")
    for v in found:
        mark = "*" if v.active else " "
        click.echo(
            f"{mark} v{v.version}  {for_display(v.created_at)}  {printable(v.author or '-'):<12} "
            f"{printable(v.comment)}"
        )


@main.command()
@click.argument("funnel")
@click.argument("version", type=int)
@click.pass_context
@friendly
def activate(ctx: click.Context, funnel: str, version: int) -> None:
    """Make an older version active again (rollback)."""
    v = open_conveyor(ctx).activate(funnel, version, actor=cli_actor())
    click.echo(f"{printable(v.funnel)} version {v.version} is active")

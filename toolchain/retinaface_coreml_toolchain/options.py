"""Options shared by several commands, defined once and stacked as decorators."""

from __future__ import annotations

from pathlib import Path

import click

json_output = click.option(
    "--json", "as_json", is_flag=True, help="Print the result record as JSON instead of a table."
)

bucket = click.option(
    "--bucket",
    "buckets",
    multiple=True,
    metavar="HxW",
    help="Only this bucket (repeatable), e.g. --bucket 384x640. Default: every recipe bucket.",
)

model_path = click.argument("model", type=click.Path(path_type=Path, dir_okay=False, exists=False))


def model_format(help_text: str):
    """``--format mlprogram|neuralnetwork`` (default mlprogram), with the command's own help."""
    return click.option(
        "--format",
        "model_format",
        type=click.Choice(["mlprogram", "neuralnetwork"]),
        default="mlprogram",
        show_default=True,
        help=help_text,
    )


html_report = click.option(
    "--html",
    "html",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML picture of the partitions to this file.",
)

"""The `toolchain` command line: thin Click commands that build a request, call a step, render.

Steps are imported inside the callbacks, so `toolchain --help` never imports onnx, onnxsim or
onnxruntime.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from retinaface_coreml_toolchain import options
from retinaface_coreml_toolchain.errors import ToolchainError

EXIT_CODES = """\b
Exit codes:
  0  done; every gate passed
  1  a gate failed (coverage, partitions, validation; rules check: a stale table)
  2  bad input (a missing or unreadable file, not an ONNX model, a wrong option);
     optimize: also a pass that breaks numerical equality (left out; OUT is written)"""


class _Group(click.Group):
    """Turns every ToolchainError, and any OSError (a read-only folder, a full disk), into one
    stderr line and its exit code, with no traceback unless --debug. Every command's help ends
    with the exit codes."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.epilog = cmd.epilog or EXIT_CODES
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ToolchainError as exc:
            if ctx.meta.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.return_code)
        except OSError as exc:
            if ctx.meta.get("debug"):
                raise
            where = exc.filename or "a file"
            click.echo(
                f"error: {where}: {exc.strerror or exc}; check that the folder is writable "
                "and the disk has room, then run the step again",
                err=True,
            )
            ctx.exit(ToolchainError.return_code)


@click.group(cls=_Group, epilog=EXIT_CODES)
@click.option(
    "--recipe",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("models/retinaface.toml"),
    show_default=True,
    help="The build recipe.",
)
@click.option("--debug", is_flag=True, help="Show the traceback of a failure.")
@click.option("-v", "--verbose", is_flag=True, help="Log each step's progress to stderr.")
@click.pass_context
def cli(ctx: click.Context, recipe: Path, debug: bool, verbose: bool) -> None:
    """Predict and fix how ONNX Runtime's CoreML EP partitions any ONNX model (coverage,
    optimize); build the retinaface-coreml wheels (fetch, simplify, validate, coverage,
    precompile, package, or all in order: build)."""
    ctx.meta["debug"] = debug
    ctx.obj = recipe
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        stream=sys.stderr,
    )


def _recipe(ctx: click.Context):  # -> Recipe, typed loosely to keep imports deferred
    from retinaface_coreml_toolchain.recipe import load_recipe

    return load_recipe(ctx.obj)


def _emit(record: dict[str, Any], as_json: bool, render) -> None:
    """Print ``record`` as JSON, or as the text ``render`` makes of it: one record, two views."""
    if as_json:
        click.echo(json.dumps(record, indent=2, sort_keys=True))
    else:
        click.echo(render(record))


@cli.command()
@click.option(
    "--from",
    "from_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Use your own RetinaFace ONNX file instead of the pinned download; records its sha256.",
)
@click.option("--sha256", "expected", help="Expected sha256 (default: the recipe's pin).")
@options.json_output
@click.pass_context
def fetch(ctx: click.Context, from_path: Path | None, expected: str | None, as_json: bool) -> None:
    """Download the pinned weights (or take --from PATH) into weights/ and check the sha256."""
    from retinaface_coreml_toolchain.fetch import FetchRequest, fetch_weights, render

    result = fetch_weights(
        _recipe(ctx), FetchRequest(from_path=from_path, expected_sha256=expected)
    )
    _emit(result.to_dict(), as_json, render)


@cli.command()
@options.json_output
@click.pass_context
def simplify(ctx: click.Context, as_json: bool) -> None:
    """Fix the input shape per bucket, run onnxsim and the onnx checker, stamp the cache key."""
    from retinaface_coreml_toolchain.simplify import render, simplify_buckets

    result = simplify_buckets(_recipe(ctx))
    _emit(result.to_dict(), as_json, render)


@cli.command()
@options.json_output
@click.pass_context
def validate(ctx: click.Context, as_json: bool) -> None:
    """Compare every bucket model with the source model on the real photos (ORT CPU)."""
    from retinaface_coreml_toolchain.validate import check_validation, render, validate_buckets

    recipe = _recipe(ctx)
    result = validate_buckets(recipe)
    _emit(result.to_dict(), as_json, render)
    check_validation(result, recipe)


@cli.command()
@click.argument("model", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--ort-version", help="ORT release to model, e.g. 1.23 (default: the installed one).")
@click.option(
    "--format",
    "model_format",
    type=click.Choice(["mlprogram", "neuralnetwork", "both"]),
    default="both",
    show_default=True,
    help="CoreML model format the EP would build.",
)
@click.option("--require-static-shapes", is_flag=True, help="Model RequireStaticInputShapes=1.")
@options.json_output
@options.html_report
@click.option("--min-coverage", type=click.FloatRange(0, 1), help="Gate: exit 1 below this.")
@click.option("--max-partitions", type=click.IntRange(0), help="Gate: exit 1 above this.")
@click.option("--real", is_flag=True, help="Also run the real CoreML EP (macOS only).")
def coverage(
    model: Path,
    ort_version: str | None,
    model_format: str,
    require_static_shapes: bool,
    as_json: bool,
    html: Path | None,
    min_coverage: float | None,
    max_partitions: int | None,
    real: bool,
) -> None:
    """Predict how ORT's CoreML EP partitions MODEL: the numbers it logs, reasons per node."""
    from retinaface_coreml_toolchain.coverage.api import CoverageRequest, bucket_gate, run_coverage
    from retinaface_coreml_toolchain.coverage.report import render
    from retinaface_coreml_toolchain.errors import GateFailed

    if real:
        from retinaface_coreml_toolchain.coverage.real import require_coreml

        require_coreml()  # one line and exit 2 off macOS, before any analysis
    if html is not None:
        from retinaface_coreml_toolchain.coverage.html import check_target

        check_target(html)  # one line and exit 2 before any analysis
    formats = ("mlprogram", "neuralnetwork") if model_format == "both" else (model_format,)
    request = CoverageRequest(
        model=model,
        ort_version=ort_version,
        formats=formats,
        require_static_shapes=require_static_shapes,
    )
    report = run_coverage(request)
    _emit(report.to_dict(), as_json, render)
    if html is not None:
        from retinaface_coreml_toolchain.coverage.html import write_report_page

        write_report_page(html, report)
    if real:
        from retinaface_coreml_toolchain.coverage.real import render_side_by_side, run_real

        reals = [
            run_real(model, model_format=f, require_static_shapes=require_static_shapes)
            for f in formats
        ]
        click.echo(render_side_by_side(report.to_dict(), reals))
    if min_coverage is not None or max_partitions is not None:
        shortfall = bucket_gate(
            report,
            min_coverage=0.0 if min_coverage is None else min_coverage,
            max_partitions=max_partitions if max_partitions is not None else 1 << 30,
        )
        if shortfall is not None:
            raise GateFailed(shortfall)


@cli.command("inspect-cache")
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path, file_okay=False),
    help="A cache root to inspect, e.g. a user cache. Default: models/build/<name>/coreml.",
)
@options.json_output
@click.pass_context
def inspect_cache(ctx: click.Context, root: Path | None, as_json: bool) -> None:
    """Read each cached CoreML model's spec (coremltools) and check it against its bucket."""
    from retinaface_coreml_toolchain.inspect_cache import check_inspection, inspect_cache, render
    from retinaface_coreml_toolchain.precompile import cache_root

    recipe = _recipe(ctx)
    result = inspect_cache(recipe, root or cache_root(recipe))
    _emit(result.to_dict(), as_json, render)
    check_inspection(result)


models_option = click.option(
    "--models",
    "models",
    default="",
    metavar="A,B",
    help="Only these recipes (comma-separated); default: every recipe. `make models MODELS=`.",
)
recipe_dirs_option = click.option(
    "--recipe-dir",
    "recipe_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Also read the recipes in this folder (repeatable), e.g. zoo/recipes.",
)


@cli.command()
@options.bucket
@models_option
@recipe_dirs_option
@options.json_output
@click.pass_context
def precompile(
    ctx: click.Context,
    buckets: tuple[str, ...],
    models: str,
    recipe_dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Fill the CoreML cache per bucket of every recipe (macOS); elsewhere say why it is skipped.

    Each model's entries and record go to models/build/<name>/ (coreml/, precompile.json).
    """
    from retinaface_coreml_toolchain.precompile import PrecompileRequest, precompile, render

    records = {
        recipe.name: precompile(recipe, PrecompileRequest(buckets=buckets)).to_dict()
        for recipe in _selected(ctx, models, recipe_dirs)
    }
    if as_json:
        click.echo(json.dumps(records, indent=2, sort_keys=True))
    elif len(records) == 1:
        click.echo(render(next(iter(records.values()))))
    else:
        click.echo("\n".join(f"{name}:\n{render(record)}" for name, record in records.items()))


def _root(ctx: click.Context) -> Path:
    """The project root: the folder holding pyproject.toml and models/ above --recipe."""
    from retinaface_coreml_toolchain.recipe import project_root

    return project_root(Path(ctx.obj))


def _selected(ctx: click.Context, models: str, recipe_dirs: tuple[Path, ...]):
    from retinaface_coreml_toolchain.recipe import select_recipes

    names = tuple(n.strip() for n in models.split(",") if n.strip())
    return select_recipes(_root(ctx), names, recipe_dirs)


@cli.command("merge-caches")
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path, file_okay=False))
@models_option
@recipe_dirs_option
@options.json_output
@click.pass_context
def merge_caches(
    ctx: click.Context,
    sources: tuple[Path, ...],
    models: str,
    recipe_dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Ship the CoreML entries of several macOS builds (one per ORT release) in one wheel.

    Each SOURCE holds one build's <model>/precompile.json and <model>/coreml/ for every model
    (as models/build/ lays them out); any disagreement exits 2.
    """
    import os

    from retinaface_coreml_toolchain.merge_caches import MergeRequest, merge_into_wheel, render

    result = merge_into_wheel(
        _selected(ctx, models, recipe_dirs), MergeRequest(sources=sources), env=os.environ
    )
    _emit(result.to_dict(), as_json, render)


@cli.command()
@models_option
@recipe_dirs_option
@options.json_output
@click.pass_context
def package(ctx: click.Context, models: str, recipe_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Copy every built model and manifest.json into the package; build the wheel into dist/."""
    from retinaface_coreml_toolchain.package import build_wheel, render

    result = build_wheel(_selected(ctx, models, recipe_dirs))
    _emit(result.to_dict(), as_json, render)


@cli.command()
@click.option(
    "--from",
    "from_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Build RetinaFace from your own ONNX (as `fetch --from`); `make models SOURCE=PATH`.",
)
@models_option
@recipe_dirs_option
@options.json_output
@click.pass_context
def build(
    ctx: click.Context,
    from_path: Path | None,
    models: str,
    recipe_dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Every recipe: fetch, simplify+optimize, validate, coverage, precompile; then one wheel."""
    from retinaface_coreml_toolchain.pipeline import render, run_pipeline

    result = run_pipeline(_selected(ctx, models, recipe_dirs), from_path=from_path)
    _emit(result.to_dict(), as_json, render)


@cli.command()
@click.argument("name")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=D1,D2,...",
    help="Fix an input's shape (repeatable; name an input again for one more bucket).",
)
@click.option("--max-partitions", type=click.IntRange(0), default=1, show_default=True)
@options.model_format("The CoreML ModelFormat gated and shipped.")
@click.option(
    "--ort-version",
    "ort_versions",
    multiple=True,
    help="Gate under this ORT series (repeatable). Default: every one the wheel admits.",
)
@click.option("--batch-independent", is_flag=True, help="Axis 0 is a free batch (validated).")
@click.option(
    "--recipe-dir",
    "recipe_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the recipe here instead of models/ (e.g. zoo/recipes).",
)
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    source: Path,
    inputs: tuple[str, ...],
    max_partitions: int,
    model_format: str,
    ort_versions: tuple[str, ...],
    batch_independent: bool,
    recipe_dir: Path | None,
) -> None:
    """Write models/NAME.toml for SOURCE.onnx; print the predicted coverage per ORT series."""
    from retinaface_coreml_toolchain.add import AddRequest, add_recipe, render

    result = add_recipe(
        AddRequest(
            root=_root(ctx),
            name=name,
            source=source,
            inputs=inputs,
            max_partitions=max_partitions,
            model_format=model_format,
            ort_versions=ort_versions,
            batch_independent=batch_independent,
            recipe_dir=recipe_dir,
        )
    )
    click.echo(render(result))


@cli.command()
@click.argument("model", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the optimized model (atomically).",
)
@click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    metavar="NAME=D1,D2,...",
    help="Fix an input's shape (repeatable); other dynamic dims become 1.",
)
@click.option(
    "--ort-version",
    "ort_versions",
    multiple=True,
    help="ORT release whose rules decide (repeatable), e.g. 1.23. Default: the installed one.",
)
@options.model_format(
    "CoreML model format that decides whether a pass is kept (both are reported)."
)
@options.json_output
@options.html_report
def optimize(
    model: Path,
    output: Path,
    input_shapes: tuple[str, ...],
    ort_versions: tuple[str, ...],
    model_format: str,
    as_json: bool,
    html: Path | None,
) -> None:
    """Fix shapes, simplify and rewrite MODEL for the CoreML EP; check the numbers still match."""
    from retinaface_coreml_toolchain.optimize.report import check_equality, render
    from retinaface_coreml_toolchain.optimize.shapes import parse_input_shape
    from retinaface_coreml_toolchain.optimize.step import OptimizeRequest, optimize_file

    if html is not None:
        from retinaface_coreml_toolchain.coverage.html import check_target

        check_target(html)  # one line and exit 2 before any work
    request = OptimizeRequest(
        model=model,
        output=output,
        input_shapes=dict(parse_input_shape(text) for text in input_shapes),
        ort_versions=ort_versions,
        model_format=model_format,
        html=html,
    )
    record = optimize_file(request)
    _emit(record, as_json, render)
    check_equality(record)


@cli.group()
def rules() -> None:
    """The CoreML rule tables: check them against a release's macOS binary."""


@rules.command("check")
@click.argument("version")
@click.option(
    "--download-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to keep downloaded wheels. Default: the user cache.",
)
@options.json_output
def rules_check(version: str, download_dir: Path | None, as_json: bool) -> None:
    """Diff onnxruntime VERSION's CoreML EP (macOS arm64 wheel) against its rule table.

    Exit 0: the table matches; 1: it is stale; 2: bad version, no such release or no download.
    """
    from retinaface_coreml_toolchain.coverage.rules_check import (
        check_release,
        check_stale,
        render,
    )

    result = check_release(version, download_dir=download_dir)
    _emit(result.to_dict(), as_json, render)
    check_stale(result)


def main() -> None:
    """The console script: Click names itself as invoked (``retinaface-coreml-toolchain``, or
    ``python -m retinaface_coreml_toolchain``)."""
    cli()


if __name__ == "__main__":
    main()

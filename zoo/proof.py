"""`make zoo`'s proof (issue 14 item 5): the built wheel serves app-style code, unmodified.

``python -m zoo.proof [--models retinaface,mtl,star] [--recipe-dir zoo/recipes] [--wheel W]
[--root .] [--out models/zoo] [--check-recipes]`` (toolchain venv, after the wheel is built):

0. with ``--check-recipes``, ``toolchain add`` runs again on each ``kind = "path"`` recipe's
   source (its buckets, gate and format as options) into a scratch folder, and the recipe must
   equal what it writes, byte for byte (RetinaFace's own recipe is not one ``add`` writes);

1. the wheel (the one in ``dist/``) goes alone into a fresh venv (``python -m venv``,
   ``pip install WHEEL``);
2. in that venv, one process runs ``zoo/proof_app.py`` plainly (onnxruntime alone) and another
   after ``retinaface_coreml.install()``, both on each recipe's source file and the same seeded
   random input (first bucket's shape, the recipe's ``[validate] range``);
3. per model: outputs within 1e-4 relative (max |a-b| / max |b| per output), the same input and
   output metadata, ``packaged_model`` the recipe's name, ``last_served`` that bucket and the
   backend (``cpu`` where onnxruntime has no CoreML EP); the served bucket's predicted
   partitions (the manifest's coverage figures) next to the source file's
   (``toolchain coverage SOURCE --ort-version V --format F --json``), under ORT 1.23 and 1.32.

Writes ``<out>/proof.json`` and ``<out>/proof.md`` (atomically), prints the table; exit 1 when a
check fails, 2 on bad input (no wheel, a model the wheel lacks, a missing source).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.measure import VERSIONS
from zoo.table import cell_text

log = logging.getLogger("zoo.proof")

APP = Path(__file__).with_name("proof_app.py")
MAX_REL_DIFF = 1e-4
MANIFEST = "retinaface_coreml/models/manifest.json"
_FLOATS = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class ProofError(Exception):
    """Bad input: one line naming the file and the fix (exit 2)."""


@dataclass(frozen=True, kw_only=True)
class Case:
    """One model as the proof feeds it, e.g. ``mtl``, bucket ``1x3x224x224``, range [0, 1]."""

    name: str
    source: Path
    bucket: str
    input_name: str
    shape: tuple[int, ...]
    dtype: str  # onnxruntime's type string, e.g. "tensor(float)"
    low: float
    high: float
    seed: int


@dataclass(frozen=True, kw_only=True)
class Judgement:
    """The served session against plain onnxruntime: relative diff per output, every failure."""

    max_rel_diff: dict[str, float]
    metadata_equal: bool
    failures: list[str]


@dataclass(frozen=True, kw_only=True)
class ModelProof:
    """What one model showed: the figures of the table and every failed check (empty: pass)."""

    name: str
    bucket: str
    shape: list[int]
    packaged_model: str | None
    last_served: dict[str, Any] | None
    outputs: int
    max_rel_diff: dict[str, float]  # per output name
    metadata_equal: bool
    format: str  # the CoreML model format the partitions are predicted for, e.g. "mlprogram"
    partitions: dict[str, dict[str, Any] | None]  # "served 1.23", "source 1.23"... -> figures
    recipe: str | None  # "toolchain add": add writes it byte for byte now; None: not checked
    failures: list[str]


# --- inputs -----------------------------------------------------------------------------------


def find_wheel(dist: Path) -> Path:
    wheels = sorted(dist.glob("retinaface_coreml-*.whl"))
    if len(wheels) != 1:
        raise ProofError(
            f"{dist}: expected one retinaface_coreml wheel, found {len(wheels)}; "
            "run `make models MODELS=... RECIPE_DIRS=...` first"
        )
    return wheels[0]


def read_manifest(wheel: Path) -> dict[str, Any]:
    """The manifest the wheel ships (what the fresh venv's runtime will read)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return json.loads(archive.read(MANIFEST))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ProofError(f"{wheel}: no readable {MANIFEST} ({exc}); rebuild the wheel") from None


def cases(
    root: Path, models: tuple[str, ...], recipe_dirs: tuple[Path, ...], manifest: dict[str, Any]
) -> list[Case]:
    """Per recipe: its source file, its first bucket, the input range it is validated in."""
    from retinaface_coreml_toolchain.errors import ToolchainError
    from retinaface_coreml_toolchain.recipe import select_recipes

    try:
        recipes = select_recipes(root, models, tuple(root / d for d in recipe_dirs))
    except ToolchainError as exc:
        raise ProofError(str(exc)) from None
    found = []
    for recipe in recipes:
        record = manifest["models"].get(recipe.name)
        if record is None:
            raise ProofError(
                f"the wheel holds no model {recipe.name!r} (it has "
                f"{', '.join(manifest['models'])}); rebuild it with that recipe"
            )
        source = recipe.source.override or recipe.source.path
        if not source.is_file():
            raise ProofError(f"{source}: missing; `make models` (or `make zoo`) writes it")
        if len(record["inputs"]) != 1 or record["inputs"][0]["type"] not in _FLOATS:
            raise ProofError(
                f"{recipe.path}: the proof feeds one float input, as the app does; "
                f"this model has {record['inputs']}"
            )
        bucket = recipe.buckets[0]
        low, high = recipe.validate.low, recipe.validate.high
        if recipe.detector is not None:  # photos minus the BGR mean: what the detector feeds
            low, high = -max(recipe.detector.mean_bgr), 255.0 - min(recipe.detector.mean_bgr)
        (input_name,) = bucket.inputs
        found.append(
            Case(
                name=recipe.name,
                source=source,
                bucket=bucket.name,
                input_name=input_name,
                shape=bucket.inputs[input_name],
                dtype=record["inputs"][0]["type"],
                low=low,
                high=high,
                seed=recipe.validate.seed,
            )
        )
    return found


def make_input(case: Case) -> np.ndarray:
    """Seeded uniform random tensor of the bucket's shape in the recipe's range."""
    rng = np.random.default_rng(case.seed)
    return rng.uniform(case.low, case.high, case.shape).astype(_FLOATS[case.dtype])


# --- the recipes: what `toolchain add` writes from the sources ---------------------------------


def add_command(recipe: Any, source: Path) -> list[str]:
    """The ``toolchain add`` line that writes ``recipe`` again from ``source``."""
    command = ["add", recipe.name, str(source)]
    for bucket in recipe.buckets:
        for name, shape in bucket.inputs.items():
            command += ["--input", f"{name}={','.join(map(str, shape))}"]
    command += ["--max-partitions", str(recipe.gate.limits.max_partitions),
                "--format", recipe.coreml_options["ModelFormat"].lower()]  # fmt: skip
    for version in recipe.gate.ort_versions:
        command += ["--ort-version", version]
    if recipe.batch_independent:
        command.append("--batch-independent")
    return command


def _scratch_project(root: Path, folder: Path, source: Path) -> Path:
    """A project in ``folder`` (root's pyproject.toml, an empty models/) holding ``source`` at
    the same path relative to it (a hard link), so ``add`` writes the recipe's path unchanged and
    refuses no name the real project already has. Returns the source as ``add`` is given it."""
    (folder / "models").mkdir()
    shutil.copy(root / "pyproject.toml", folder / "pyproject.toml")
    try:
        relative = source.resolve().relative_to(root)
    except ValueError:
        return source.resolve()  # outside the project: the recipe holds the absolute path
    (folder / relative).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, folder / relative)
    except OSError:
        shutil.copy(source, folder / relative)
    return relative


def recipe_origins(root: Path, models: tuple[str, ...], recipe_dirs: tuple[Path, ...]) -> dict:
    """Per model: ``"toolchain add"`` when ``toolchain add`` run now on the recipe's source
    writes the recipe byte for byte; else why not (a recipe of another kind, or the diff)."""
    import difflib

    from retinaface_coreml_toolchain.recipe import select_recipes

    origins = {}
    scratch = root / "models" / "build"  # git-ignored, and on the sources' file system
    scratch.mkdir(parents=True, exist_ok=True)
    for recipe in select_recipes(root, models, tuple(root / d for d in recipe_dirs)):
        if recipe.source.kind != "path" or recipe.detector is not None:
            origins[recipe.name] = f"own ({recipe.source.kind} source, detector recipe)"
            continue
        with tempfile.TemporaryDirectory(dir=scratch, prefix="proof-add-") as folder:
            source = _scratch_project(root, Path(folder), recipe.source.path)
            command = add_command(recipe, source)
            log.info("toolchain %s", " ".join(command))
            done = subprocess.run(
                [sys.executable, "-m", "retinaface_coreml_toolchain", *command],
                cwd=folder, capture_output=True, text=True, check=False,
            )  # fmt: skip
            written = Path(folder) / "models" / f"{recipe.name}.toml"
            if done.returncode != 0 or not written.is_file():
                origins[recipe.name] = f"toolchain add failed: {done.stderr.strip()[-300:]}"
                continue
            theirs = written.read_text()
        ours = recipe.path.read_text()
        if ours == theirs:
            origins[recipe.name] = "toolchain add"
        else:
            diff = difflib.unified_diff(theirs.splitlines(), ours.splitlines(), lineterm="", n=0)
            origins[recipe.name] = "differs from toolchain add: " + " ".join(list(diff)[3:7])
    return origins


# --- the fresh venv and the app -------------------------------------------------------------


def fresh_venv(wheel: Path, where: Path) -> Path:
    """``python -m venv``, then ``pip install WHEEL`` alone; returns the venv's python."""
    venv = where / "venv"
    log.info("python -m venv %s; pip install %s", venv, wheel.name)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
    )
    return python


def run_app(python: Path, work: Path, jobs: list[dict[str, str]], *, install: bool) -> dict:
    """One process of ``proof_app.py`` in the venv; its record (outputs in the jobs' .npz)."""
    mode = "installed" if install else "plain"
    request = work / f"{mode}.json"
    record = work / f"{mode}.record.json"
    request.write_text(json.dumps({"install": install, "record": str(record), "jobs": jobs}))
    # The venv's own package and models only: no models dir or cache of the caller's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETINAFACE_COREML_")}
    env["RETINAFACE_COREML_CACHE_DIR"] = str(work / "cache")
    log.info("%s: %s -I %s", mode, python, APP.name)
    subprocess.run([str(python), "-I", str(APP), str(request)], cwd=work, env=env, check=True)
    return json.loads(record.read_text())


def source_partitions(source: Path, version: str, model_format: str) -> dict[str, Any]:
    """``toolchain coverage SOURCE --ort-version V --format F --json``, as figures."""
    command = [
        sys.executable,
        "-m",
        "retinaface_coreml_toolchain",
        "coverage",
        str(source),
        "--ort-version",
        version,
        "--format",
        model_format,
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if not done.stdout.strip():
        raise ProofError(f"{source}: toolchain coverage failed: {done.stderr.strip()[-300:]}")
    figures = json.loads(done.stdout)["formats"][model_format]
    return {
        "nodes_in_graph": figures["nodes_in_graph"],
        "nodes_supported": figures["nodes_supported"],
        "partitions": figures["partitions"],
        "mac_share": figures["macs"]["share"],
    }


# --- judging --------------------------------------------------------------------------------


def relative_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b| (b: plain onnxruntime's); 0 when equal, inf when b is all 0."""
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
    scale = float(np.max(np.abs(b.astype(np.float64)), initial=0.0))
    return 0.0 if diff == 0.0 else (diff / scale if scale else float("inf"))


def judge(
    case: Case,
    plain: dict[str, Any],
    served: dict[str, Any],
    plain_outputs: list[np.ndarray],
    served_outputs: list[np.ndarray],
    *,
    coreml_ep: bool,
) -> Judgement:
    """The served session's outputs and metadata against plain onnxruntime's, and its report."""
    failures = []
    if served["packaged_model"] != case.name:
        failures.append(f"packaged_model {served['packaged_model']!r} != {case.name!r}")
    last = served["last_served"] or {}
    if last.get("bucket") != case.bucket:
        failures.append(f"last_served.bucket {last.get('bucket')!r} != {case.bucket!r}")
    backends = ("coreml", "cpu") if coreml_ep else ("cpu",)
    if last.get("backend") not in backends:
        failures.append(f"last_served.backend {last.get('backend')!r} not in {backends}")
    metadata_equal = True
    for kind in ("inputs", "outputs"):
        if served[kind] != plain[kind]:
            metadata_equal = False
            failures.append(f"{kind} metadata differ: {served[kind]} != {plain[kind]}")
    names = [o["name"] for o in plain["outputs"]]
    if len(served_outputs) != len(plain_outputs):
        failures.append(f"{len(served_outputs)} outputs != {len(plain_outputs)}")
    diffs = {}
    for name, a, b in zip(names, served_outputs, plain_outputs, strict=False):
        if a.shape != b.shape or a.dtype != b.dtype:
            failures.append(f"output {name}: {a.dtype}{list(a.shape)} != {b.dtype}{list(b.shape)}")
            continue
        diffs[name] = relative_diff(a, b)
        if not diffs[name] <= MAX_REL_DIFF:
            failures.append(f"output {name}: relative diff {diffs[name]:.2e} > {MAX_REL_DIFF}")
    return Judgement(max_rel_diff=diffs, metadata_equal=metadata_equal, failures=failures)


def _load(path: str) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def prove(
    *,
    wheel: Path,
    manifest: dict[str, Any],
    selected: list[Case],
    work: Path,
    origins: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The whole record: the venv's facts, and one ``ModelProof`` per model."""
    python = fresh_venv(wheel, work)
    jobs = []
    for case in selected:
        np.save(work / f"{case.name}.input.npy", make_input(case))
        jobs.append(
            {
                "name": case.name,
                "source": str(case.source),
                "input": str(work / f"{case.name}.input.npy"),
            }
        )
    runs = {}
    for mode, install in (("plain", False), ("installed", True)):
        mode_jobs = [{**j, "outputs": str(work / f"{j['name']}.{mode}.npz")} for j in jobs]
        runs[mode] = run_app(python, work, mode_jobs, install=install)
    plain, installed = runs["plain"], runs["installed"]
    venv_checks = []
    if plain["retinaface_coreml"] is not None or not plain["session_class"].startswith("onnxrun"):
        venv_checks.append(f"the plain process was not plain onnxruntime: {plain['session_class']}")
    if not str(installed["retinaface_coreml"] or "").startswith(str(python.parent.parent)):
        venv_checks.append(
            f"retinaface_coreml came from {installed['retinaface_coreml']}, not the fresh venv"
        )
    coreml_ep = "CoreMLExecutionProvider" in installed["available_providers"]
    proofs = []
    for case in selected:
        model = manifest["models"][case.name]
        judgement = judge(
            case,
            plain["models"][case.name],
            installed["models"][case.name],
            _load(str(work / f"{case.name}.plain.npz")),
            _load(str(work / f"{case.name}.installed.npz")),
            coreml_ep=coreml_ep,
        )
        failures = list(judgement.failures)
        served_bucket = (installed["models"][case.name]["last_served"] or {}).get("bucket")
        model_format = model["coreml"]["provider_options"]["ModelFormat"].lower()
        partitions = {}
        for version in VERSIONS:
            figures = model["coverage"].get(served_bucket, {}).get(version, {}).get(model_format)
            if figures is None:
                failures.append(
                    f"the manifest has no {model_format} figures for "
                    f"{served_bucket} under ORT {version}"
                )
            partitions[f"served {version}"] = figures
            partitions[f"source {version}"] = source_partitions(case.source, version, model_format)
        origin = (origins or {}).get(case.name)
        if origin is not None and origin != "toolchain add" and not origin.startswith("own "):
            failures.append(f"recipe {origin}")
        proofs.append(
            ModelProof(
                name=case.name,
                bucket=case.bucket,
                shape=list(case.shape),
                packaged_model=installed["models"][case.name]["packaged_model"],
                last_served=installed["models"][case.name]["last_served"],
                outputs=len(plain["models"][case.name]["outputs"]),
                max_rel_diff=judgement.max_rel_diff,
                metadata_equal=judgement.metadata_equal,
                format=model_format,
                partitions=partitions,
                recipe=origin,
                failures=failures,
            )
        )
    return {
        "wheel": wheel.name,
        "wheel_models": sorted(manifest["models"]),
        "python": installed["python"],
        "onnxruntime": installed["onnxruntime"],
        "available_providers": installed["available_providers"],
        "coreml_ep": coreml_ep,
        "venv_failures": venv_checks,
        "models": [asdict(p) for p in proofs],
    }


# --- the table ------------------------------------------------------------------------------


def render(record: dict[str, Any]) -> str:
    """One Markdown table, the backend stated in its header."""
    backend = (
        "bucket, backend"
        if record["coreml_ep"]
        else "bucket, backend (cpu: no CoreML EP in this onnxruntime; no CoreML figure claimed)"
    )
    head = [
        "model",
        "recipe",
        "input",
        "`packaged_model`",
        f"`last_served`: {backend}",
        "outputs",
        "max rel. diff",
        "metadata",
    ]
    for version in VERSIONS:
        head += [f"served bucket, ORT {version}", f"source file, ORT {version}"]
    head.append("checks")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for proof in record["models"]:
        served = proof["last_served"] or {}
        worst = max(proof["max_rel_diff"].values(), default=float("nan"))
        recipe = proof["recipe"]
        cells = [
            proof["name"],
            "not checked"
            if recipe is None
            else (f"= `{recipe}`" if recipe == "toolchain add" else recipe),
            "x".join(map(str, proof["shape"])),
            f"`{proof['packaged_model']}`",
            f"{served.get('bucket')}, {served.get('backend')}",
            str(proof["outputs"]),
            f"{worst:.1e}",
            "same" if proof["metadata_equal"] else "DIFFER",
        ]
        for version in VERSIONS:
            cells += [
                cell_text(proof["partitions"][f"served {version}"]),
                cell_text(proof["partitions"][f"source {version}"]),
            ]
        cells.append("pass" if not proof["failures"] else "FAIL: " + "; ".join(proof["failures"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Wheel {record['wheel']} (models: {', '.join(record['wheel_models'])}), installed alone "
        f"into a fresh venv (onnxruntime {record['onnxruntime']}, providers "
        f"{', '.join(record['available_providers'])}). Partition cells: CoreML nodes / level-1 "
        "nodes in P partitions, MAC share on CoreML, in the model's CoreML format "
        f"({', '.join(sorted({p['format'] for p in record['models']}))}), predicted by "
        "`toolchain coverage` (served bucket: the manifest's figures; source file: "
        "`toolchain coverage SOURCE --ort-version V --format F --json`). Recipe: "
        "`= toolchain add` when `toolchain add` run again on the source writes it byte for byte.",
    ]
    lines += [f"FAIL: {f}" for f in record["venv_failures"]]
    return "\n".join(lines)


def failed(record: dict[str, Any]) -> bool:
    return bool(record["venv_failures"]) or any(p["failures"] for p in record["models"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zoo.proof",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="The project root.")
    parser.add_argument("--models", default="retinaface,mtl,star")
    parser.add_argument(
        "--recipe-dir",
        type=Path,
        action="append",
        default=None,
        help="Recipe folder besides models/ (default: zoo/recipes).",
    )
    parser.add_argument("--wheel", type=Path, help="Default: the one wheel in ROOT/dist.")
    parser.add_argument("--out", type=Path, help="Default: ROOT/models/zoo.")
    parser.add_argument(
        "--check-recipes",
        action="store_true",
        help="Run `toolchain add` on each source again; the recipe must equal it.",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    from retinaface_coreml_toolchain.files import write_bytes, write_json

    root = args.root.resolve()
    recipe_dirs = tuple(args.recipe_dir or [Path("zoo/recipes")])
    out = args.out or root / "models" / "zoo"
    try:
        wheel = args.wheel or find_wheel(root / "dist")
        manifest = read_manifest(wheel)
        models = tuple(args.models.split(","))
        selected = cases(root, models, recipe_dirs, manifest)
        origins = recipe_origins(root, models, recipe_dirs) if args.check_recipes else None
        with tempfile.TemporaryDirectory(prefix="zoo-proof-") as work:
            record = prove(
                wheel=wheel, manifest=manifest, selected=selected, work=Path(work), origins=origins
            )
    except ProofError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:  # the venv, pip or the app itself failed
        print(
            f"error: the proof failed: {' '.join(map(str, exc.cmd))} exited {exc.returncode}",
            file=sys.stderr,
        )
        return 1
    table = render(record)
    write_json(out / "proof.json", record)
    write_bytes(out / "proof.md", (table + "\n").encode())
    print(table)
    if failed(record):
        print("error: the proof failed (see the checks column)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Export the app's MTL and STAR models to ONNX as the app's own scripts do, with random weights.

Runs in the zoo venv (``make zoo`` builds ``.venv-zoo``: CPU torch, timm, openface-test), never
in the toolchain's venv: ``python -m zoo.export --out models/zoo``.

The export settings are the app's (its ``convert_*_to_onnx.py`` scripts): the legacy
TorchScript exporter, opset 14, constant folding on, a dynamic batch axis on the input and the
named outputs. Weights are random (``torch.manual_seed(0)`` before the model is built): the
graph's structure is what the toolchain works on, and it runs the same on the real weights.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import logging
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo import torchvision_shim

log = logging.getLogger("zoo.export")

# Known, expected warnings; silenced so that a new one stands out.
EXPECTED_WARNINGS = (
    # We want the legacy exporter: it is what the app's scripts use.
    "You are using the legacy TorchScript-based ONNX export",
    # openface's MTL asks timm for the old name of the same EfficientNet-B0.
    "Mapping deprecated model name tf_efficientnet_b0_ns",
    # STAR's heatmap decoder builds its grid with torch.meshgrid and no indexing= ("ij", the
    # default, is what it wants).
    "torch.meshgrid: in an upcoming release",
    # STAR's heatmap activation calls F.instance_norm with no running stats, so it always
    # normalises with the input's own statistics, in eval mode too: "train=True" is correct.
    "operator 'instance_norm' is set to train=True",
)

ROOT = Path(__file__).resolve().parent.parent
OPSET = 14
SEED = 0


@dataclass(frozen=True, kw_only=True)
class ZooModel:
    """One model of the app: how to build it and the names its export script gives."""

    name: str  # file stem, e.g. "mtl" -> mtl.onnx
    build: Callable[[], Any]
    input_shape: tuple[int, ...]
    input_name: str
    output_names: tuple[str, ...]


def build_mtl() -> Any:
    """OpenFace 3.0's multitask model: EfficientNet-B0 with emotion, gaze and AU heads."""
    from openface.model.MTL import MTL

    return MTL()


def build_star() -> Any:
    """OpenFace 3.0's STAR landmark model with the ``alignment`` config (WFLW, 98 points)."""
    from openface.STAR.lib.utility import get_config, get_net

    config = get_config(argparse.Namespace(config_name="alignment", device_id=-1))
    return get_net(config)


MODELS = (
    ZooModel(
        name="mtl",
        build=build_mtl,
        input_shape=(1, 3, 224, 224),
        input_name="input_face",
        output_names=("emotion", "gaze", "au"),
    ),
    # STAR's forward returns (12 per-stack maps, 4 fusion maps, landmarks): 17 outputs. The app
    # names only the first three, so "landmarks" is the third map, not the coordinates; the
    # export keeps that naming so the graph is the app's.
    ZooModel(
        name="star",
        build=build_star,
        input_shape=(1, 3, 256, 256),
        input_name="input_image",
        output_names=("output", "heatmap", "landmarks"),
    ),
)


def _atomic_writer() -> Callable[..., Any]:
    """The project's one atomic writer, loaded by path: the runtime package's ``__init__``
    imports onnxruntime and OpenCV, which this venv does not have."""
    path = ROOT / "src" / "retinaface_coreml" / "atomic.py"
    spec = importlib.util.spec_from_file_location("_retinaface_coreml_atomic", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is in the repo
        raise RuntimeError(f"{path}: cannot load the atomic writer")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.atomic_writer


def export(model: ZooModel, out_dir: Path) -> Path:
    """Build ``model`` with seed-0 random weights and write ``out_dir/<name>.onnx`` atomically."""
    import torch

    torch.manual_seed(SEED)
    net = model.build().eval()
    dummy = torch.randn(*model.input_shape)
    batch = {0: "batch_size"}
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            net,
            (dummy,),
            buffer,
            export_params=True,
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=[model.input_name],
            output_names=list(model.output_names),
            dynamic_axes={name: batch for name in (model.input_name, *model.output_names)},
            dynamo=False,
        )
    target = out_dir / f"{model.name}.onnx"
    with _atomic_writer()(target) as handle:
        handle.write(buffer.getvalue())
    log.info("%s: %.1f MB", target, target.stat().st_size / 1e6)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.export", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "zoo")
    parser.add_argument("models", nargs="*", help="mtl, star (default: both)")
    args = parser.parse_args(argv)
    unknown = set(args.models) - {m.name for m in MODELS}
    if unknown:
        parser.error(f"unknown model {sorted(unknown)}; choose from {[m.name for m in MODELS]}")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    for message in EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=f".*{re.escape(message)}")
    torchvision_shim.install()
    chosen = [m for m in MODELS if not args.models or m.name in args.models]
    for model in chosen:
        print(export(model, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

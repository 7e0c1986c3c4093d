"""App-style code for ``zoo.proof``, run as a script by a fresh venv's Python (``python -I``).

``python -I proof_app.py REQUEST.json``. REQUEST holds ``install`` (bool), ``record`` (where to
write the JSON record) and ``jobs``: per model its ``name``, ``source`` (an ONNX path), ``input``
(an .npy file) and ``outputs`` (an .npz file to write). With ``install`` the script runs the one
line an app adds, ``import retinaface_coreml; retinaface_coreml.install()``; without it,
retinaface_coreml is never imported and onnxruntime serves every model itself. Either way each
model goes through ``app_inference``, written as the app writes it.

Only the standard library, numpy and onnxruntime are imported here (what the wheel installs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def app_inference(path, x):
    """The app's own call form: onnxruntime imported inside the function, CoreML then CPU."""
    import onnxruntime

    s = onnxruntime.InferenceSession(
        path, providers=["CoreMLExecutionProvider", "CPUExecutionProvider"]
    )
    out = s.run(None, {s.get_inputs()[0].name: x})
    return s, out


def _node_args(args) -> list[dict]:
    return [{"name": a.name, "shape": list(a.shape), "type": a.type} for a in args]


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    if request["install"]:
        import retinaface_coreml

        retinaface_coreml.install()
    import onnxruntime

    models = {}
    for job in request["jobs"]:
        s, out = app_inference(job["source"], np.load(job["input"]))
        np.savez(job["outputs"], *out)
        served = getattr(s, "last_served", None)
        models[job["name"]] = {
            "inputs": _node_args(s.get_inputs()),
            "outputs": _node_args(s.get_outputs()),
            "providers": list(s.get_providers()),
            "packaged_model": getattr(s, "packaged_model", None),
            "last_served": None
            if served is None
            else {"bucket": served.bucket, "backend": served.backend, "slices": served.slices},
        }
    runtime = sys.modules.get("retinaface_coreml")
    session_class = onnxruntime.InferenceSession
    record = {
        "install": request["install"],
        "python": sys.executable,
        "onnxruntime": onnxruntime.__version__,
        "available_providers": onnxruntime.get_available_providers(),
        "session_class": f"{session_class.__module__}.{session_class.__qualname__}",
        "retinaface_coreml": None if runtime is None else runtime.__file__,
        "models": models,
    }
    Path(request["record"]).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

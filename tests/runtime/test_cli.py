"""python -m retinaface_coreml: detect (text, --json, --draw), info, warmup; exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from retinaface_coreml.cli import main
from tests.conftest import EXPECTED_FACES, FACES_DIR, ROOT, reference_boxes
from tests.runtime.photos import unmatched

PHOTOS = [str(FACES_DIR / name) for name in EXPECTED_FACES]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_detect_json_counts_boxes_and_shape(package_models, capsys) -> None:
    code, out, err = run(capsys, "detect", *PHOTOS, "--json")
    assert code == 0 and err == ""
    records = json.loads(out)
    assert [r["image"] for r in records] == PHOTOS
    for record, name in zip(records, EXPECTED_FACES, strict=True):
        assert set(record) == {"image", "width", "height", "bucket", "backend", "faces"}
        assert len(record["faces"]) == EXPECTED_FACES[name], name
        boxes = [face["box"] for face in record["faces"]]
        assert unmatched(boxes, reference_boxes().get(name, [])) == [], name
        assert record["backend"] == "cpu"
        for face in record["faces"]:
            assert set(face) == {"box", "score", "landmarks"}
            assert len(face["box"]) == 4 and all(isinstance(v, float) for v in face["box"])
            assert np.asarray(face["landmarks"]).shape == (5, 2)
    first = records[0]
    assert (first["width"], first["height"], first["bucket"]) == (1920, 1280, "384x640")


def test_detect_full_resolution_runs_a_1080p_frame_in_its_own_bucket(
    package_models, capsys, tmp_path
) -> None:
    frame = cv2.imread(str(FACES_DIR / "faceapi_sample4.jpg"))[184:1264]  # 1080x1920
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), frame)
    code, out, _ = run(capsys, "detect", str(path), "--bucket", "full", "--json")
    assert code == 0
    (record,) = json.loads(out)
    assert record["bucket"] == "1080x1920" and len(record["faces"]) == 4


def test_detect_text(package_models, capsys) -> None:
    code, out, _ = run(capsys, "detect", str(FACES_DIR / "faceapi_sample5.jpg"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("faceapi_sample5.jpg: 5 faces (1920x1398, bucket 480x640, cpu)")
    assert len(lines) == 6 and all(line.startswith("  [") for line in lines[1:])


def test_score_threshold_option(package_models, capsys) -> None:
    photo = str(FACES_DIR / "faceapi_sample2.jpg")  # scores 0.999, 0.996, 0.970
    code, out, _ = run(capsys, "detect", photo, "--json", "--score-threshold", "0.99")
    assert code == 0 and len(json.loads(out)[0]["faces"]) == 2


def test_bucket_option(package_models, capsys) -> None:
    photo = str(FACES_DIR / "skimage_astronaut.png")
    code, out, _ = run(capsys, "detect", photo, "--json", "--bucket", "640x384")
    assert code == 0 and json.loads(out)[0]["bucket"] == "640x384"


def test_draw_writes_an_image(package_models, capsys, tmp_path) -> None:
    photo = FACES_DIR / "matplotlib_grace_hopper.jpg"
    out = tmp_path / "drawn.png"
    code, _, _ = run(capsys, "detect", str(photo), "--draw", str(out))
    assert code == 0
    drawn, original = cv2.imread(str(out)), cv2.imread(str(photo))
    assert drawn.shape == original.shape
    changed = np.argwhere((drawn != original).any(axis=2))
    x1, y1, x2, y2 = reference_boxes()["matplotlib_grace_hopper.jpg"][0]
    # The drawing sits around the face (the score label just above it).
    assert changed[:, 1].min() >= x1 - 10 and changed[:, 1].max() <= x2 + 10
    assert changed[:, 0].min() >= y1 - 40 and changed[:, 0].max() <= y2 + 10


def test_draw_several_images_into_a_directory(package_models, capsys, tmp_path) -> None:
    code, _, _ = run(capsys, "detect", *PHOTOS[:2], "--draw", str(tmp_path / "drawn"))
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == sorted(
        os.path.basename(p) for p in PHOTOS[:2]
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["detect", "no/such/photo.jpg"], "no/such/photo.jpg: cannot read"),
        (["detect", str(FACES_DIR / "SOURCES.md")], "SOURCES.md: not an image"),
        (["detect", PHOTOS[0], "--bucket", "1x1"], "unknown bucket '1x1'"),
        (["detect", PHOTOS[0], "--score-threshold", "7"], "score_threshold must be"),
        (["detect", PHOTOS[0], "--draw", "/proc/no/such/dir/x.png"], "cannot write the drawing"),
        (["warmup", "--bucket", "1x1"], "unknown bucket '1x1'"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(package_models, capsys, argv, needle) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err
    assert "Traceback" not in err


def test_tampered_artifact_exits_2_naming_it(tampered_models, capsys) -> None:
    models = tampered_models("retinaface/384x640.onnx")
    code, _, err = run(capsys, "detect", PHOTOS[0], "--models-dir", str(models))
    assert code == 2 and "384x640.onnx: sha256" in err and err.count("\n") == 1
    code, out, err = run(capsys, "info", "--models-dir", str(models))
    assert code == 2 and "manifest: 1 problem(s)" in out and "384x640.onnx" in err


def test_missing_models_dir_exits_2(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "info", "--models-dir", str(tmp_path))
    assert code == 2 and "manifest.json: no manifest" in err


def test_a_manifest_of_another_schema_is_one_line_naming_it_and_the_fix(
    package_models, tmp_path, capsys
) -> None:
    old = tmp_path / "models"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"schema_version": 1, "model": {}}))
    code, out, err = run(capsys, "info", "--models-dir", str(old))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"error: {old / 'manifest.json'}: manifest schema_version 1, this runtime reads 2 "
        "(docs/manifest.md); reinstall retinaface-coreml (pip install --force-reinstall) or "
        "rebuild with `make models`"
    ]


def test_info_json(package_models, capsys) -> None:
    code, out, _ = run(capsys, "info", "--json")
    assert code == 0
    record = json.loads(out)
    assert set(record) == {
        "version",
        "models_dir",
        "backends",
        "buckets",
        "models",
        "manifest_problems",
    }
    assert record["manifest_problems"] == []
    names = [b["name"] for b in record["buckets"]]
    fast = ["384x640", "480x640", "640x384", "640x480", "640x640"]
    assert sorted(names) == sorted([*fast, "1080x1920", "1920x1080", "720x1280", "1280x720"])
    assert [b["name"] for b in record["backends"]["buckets"]] == names
    if sys.platform != "darwin":
        assert record["backends"]["coreml"]["available"] is False
        assert record["backends"]["backend"] == "cpu"
    # Per packaged model: its buckets with every input's shape, and its backend state.
    # Every packaged model (after `make zoo` the build also holds mtl and star).
    packaged = json.loads((package_models / "manifest.json").read_text())["models"]
    assert sorted(record["models"]) == sorted(packaged)
    assert {"convnet", "retinaface", "twoinputs"} <= set(record["models"])
    assert record["models"]["retinaface"]["buckets"] == record["buckets"]
    convnet = record["models"]["convnet"]
    assert convnet["batch_independent"] is True
    assert [(b["name"], b["inputs"]) for b in convnet["buckets"]] == [
        ("b1_16x16", {"x": [1, 3, 16, 16]}),
        ("b2_16x16", {"x": [2, 3, 16, 16]}),
    ]
    two = record["models"]["twoinputs"]["buckets"]
    assert two == [
        {"name": "n2", "inputs": {"a": [2, 8], "b": [2, 8]}, "file": "twoinputs/n2.onnx"}
    ]
    assert [b["name"] for b in record["models"]["convnet"]["backends"]["buckets"]] == [
        "b1_16x16",
        "b2_16x16",
    ]


def test_info_text(package_models, capsys) -> None:
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert "manifest: ok" in out and "bucket 384x640" in out and "coreml cache:" in out
    assert "model convnet:" in out and "bucket b2_16x16: x [2, 3, 16, 16]" in out
    assert "bucket n2: a [2, 8], b [2, 8], twoinputs/n2.onnx" in out


def test_warmup_prints_progress(package_models, capsys) -> None:
    code, out, _ = run(capsys, "warmup")
    assert code == 0
    assert out.splitlines()[-1] == "warmup done"
    for bucket in ("640x640", "480x640", "640x480", "384x640", "640x384"):
        assert bucket in out


def test_module_entry_point_in_a_subprocess(package_models) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    ok = subprocess.run(
        [sys.executable, "-m", "retinaface_coreml", "detect", PHOTOS[6], "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)[0]["faces"]) == 1
    bad = subprocess.run(
        [sys.executable, "-m", "retinaface_coreml", "detect", "missing.jpg"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "error: missing.jpg: cannot read (No such file or directory); pass an existing image file"
    ]

"""The onnxruntime drop-in: ``retinaface_coreml.onnxruntime`` and ``install()``, side by side
with real onnxruntime on the same files (the only fake is the CoreML stand-in at the seam)."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

import retinaface_coreml
import retinaface_coreml.onnxruntime as ort
from retinaface_coreml import hash_memory
from retinaface_coreml.artifacts import MODELS_ENV
from retinaface_coreml.packaged import backends, cache
from retinaface_coreml.packaged.session import InferenceSession
from tests.runtime import standin
from tests.runtime.test_hash_memory import wait_settled

CPU = ["CPUExecutionProvider"]
RealSession = onnxruntime.capi.onnxruntime_inference_collection.InferenceSession


def write_relu_onnx(target: Path) -> Path:
    """A one-node model that is not packaged, loadable by every ORT the tests run (IR 8)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "not_packaged",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    target.write_bytes(model.SerializeToString())
    return target


def conv_input(batch: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def plain(model, feed, output_names=None) -> list[np.ndarray]:
    source = str(model) if isinstance(model, Path) else model
    return RealSession(source, providers=CPU).run(output_names, feed)


def assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.fixture
def convnet(generated_sources: Path) -> Path:
    return generated_sources / "convnet.onnx"


@pytest.fixture
def twoinputs(generated_sources: Path) -> Path:
    return generated_sources / "twoinputs.onnx"


@pytest.fixture
def installed():
    retinaface_coreml.install()
    yield
    retinaface_coreml.uninstall()


# --- a packaged model --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["str", "path", "bytes"])
def test_a_packaged_source_is_served_from_its_bucket_in_every_argument_form(convnet, form):
    model = {"str": str(convnet), "path": convnet, "bytes": convnet.read_bytes()}[form]
    session = ort.InferenceSession(model, providers=CPU)
    assert session.packaged_model == "convnet" and session.last_served is None
    x = conv_input(1)
    assert_same(session.run(None, {"x": x}), plain(convnet, {"x": x}))
    assert (session.last_served.bucket, session.last_served.backend) == ("b1_16x16", "cpu")
    with pytest.raises(AttributeError):
        session.packaged_model = "other"  # read-only
    with pytest.raises(AttributeError):
        session.last_served.bucket = "b2_16x16"  # a frozen record


def test_metadata_is_the_source_models(convnet, twoinputs):
    for model in (convnet, twoinputs):
        ours, theirs = ort.InferenceSession(str(model), providers=CPU), RealSession(str(model))
        for mine, real in [
            (ours.get_inputs(), theirs.get_inputs()),
            (ours.get_outputs(), theirs.get_outputs()),
        ]:
            assert [(n.name, n.type, n.shape) for n in mine] == [
                (n.name, n.type, n.shape) for n in real
            ]
        assert ours.get_providers() == theirs.get_providers() == CPU
        assert ours.get_modelmeta().graph_name == theirs.get_modelmeta().graph_name
        assert isinstance(ours, onnxruntime.InferenceSession)


def test_a_batch_no_bucket_holds_runs_as_slices_when_items_are_independent(convnet):
    session = ort.InferenceSession(str(convnet), providers=CPU)
    for batch, bucket, slices in [(2, "b2_16x16", 1), (4, "b2_16x16", 2), (3, "b1_16x16", 3)]:
        x = conv_input(batch, seed=batch)
        assert_same(session.run(None, {"x": x}), plain(convnet, {"x": x}))
        served = session.last_served
        assert (served.bucket, served.slices, served.backend) == (bucket, slices, "cpu")


def test_any_other_shape_runs_the_source_with_one_warning_per_shape(convnet, twoinputs, caplog):
    caplog.set_level(logging.WARNING, logger="retinaface_coreml")
    session = ort.InferenceSession(str(convnet), providers=CPU)
    x = conv_input(1, size=8)
    for _ in range(3):
        assert_same(session.run(None, {"x": x}), plain(convnet, {"x": x}))
    assert session.last_served.bucket is None and session.last_served.backend == "cpu"
    warnings = [r.getMessage() for r in caplog.records if "no packaged bucket" in r.getMessage()]
    assert len(warnings) == 1
    assert "models/convnet.toml" in warnings[0] and "inputs = { x = [1, 3, 8, 8] }" in warnings[0]
    # Two inputs, batch items not independent: batch 3 is not sliced.
    two = ort.InferenceSession(str(twoinputs), providers=CPU)
    a, b = (np.full((3, 8), v, np.float32) for v in (2.0, 3.0))
    assert_same(two.run(None, {"a": a, "b": b}), plain(twoinputs, {"a": a, "b": b}))
    assert two.last_served.bucket is None
    assert_same(two.run(["p"], {"a": a[:2], "b": b[:2]}), [np.full((2, 8), 6.0, np.float32)])
    assert two.last_served.bucket == "n2"


def test_output_names_and_run_options(twoinputs):
    session = ort.InferenceSession(str(twoinputs), providers=CPU)
    feed = {"a": np.ones((2, 8), np.float32), "b": np.full((2, 8), 4.0, np.float32)}
    options = onnxruntime.RunOptions()
    options.log_severity_level = 3
    assert_same(session.run(["p", "s"], feed, options), plain(twoinputs, feed, ["p", "s"]))
    assert session.last_served.bucket == "n2"


@pytest.mark.parametrize(
    "feed",
    [
        {"wrong": conv_input(1)},  # a wrong input name
        {"x": conv_input(1).astype(np.float64)},  # a wrong dtype
        {"x": conv_input(1)[0]},  # a wrong rank
        {},  # no input
    ],
    ids=["name", "dtype", "rank", "missing"],
)
def test_a_bad_feed_raises_what_onnxruntime_raises(convnet, feed):
    with pytest.raises(Exception) as theirs:
        RealSession(str(convnet), providers=CPU).run(None, feed)
    with pytest.raises(type(theirs.value)) as ours:
        ort.InferenceSession(str(convnet), providers=CPU).run(None, feed)
    assert str(ours.value) == str(theirs.value)


def test_an_unknown_output_name_raises_what_onnxruntime_raises(convnet):
    feed = {"x": conv_input(1)}
    with pytest.raises(Exception) as theirs:
        RealSession(str(convnet), providers=CPU).run(["nope"], feed)
    with pytest.raises(type(theirs.value)):
        ort.InferenceSession(str(convnet), providers=CPU).run(["nope"], feed)


def test_what_the_package_cannot_serve_goes_to_onnxruntimes_session_on_the_source(convnet):
    session = ort.InferenceSession(str(convnet), providers=CPU)
    binding = session.io_binding()
    x = conv_input(1)
    binding.bind_cpu_input("x", x)
    binding.bind_output("y")
    session.run_with_iobinding(binding)
    assert_same(binding.copy_outputs_to_cpu(), plain(convnet, {"x": x}))
    assert session.get_session_options() is not None
    assert session.get_provider_options() == {"CPUExecutionProvider": {}}
    # Every other public method of onnxruntime's session answers as onnxruntime's does.
    theirs = RealSession(str(convnet), providers=CPU)
    assert session.get_overridable_initializers() == [] == theirs.get_overridable_initializers()
    assert session.get_profiling_start_time_ns() == 0 == theirs.get_profiling_start_time_ns()
    assert session.get_modelmeta().producer_name == theirs.get_modelmeta().producer_name
    assert session.get_tuning_results() == theirs.get_tuning_results()


def test_a_failure_inside_the_layer_falls_back_to_onnxruntime_with_one_warning(
    convnet, package_models, tmp_path, monkeypatch, caplog
):
    broken = tmp_path / "models"
    shutil.copytree(package_models, broken)
    (broken / "convnet" / "b1_16x16.onnx").write_bytes(b"tampered")
    monkeypatch.setenv(MODELS_ENV, str(broken))
    caplog.set_level(logging.WARNING, logger="retinaface_coreml")
    session = ort.InferenceSession(str(convnet), providers=CPU)
    assert session.packaged_model == "convnet"
    x = conv_input(1)
    for _ in range(2):
        assert_same(session.run(None, {"x": x}), plain(convnet, {"x": x}))
    assert session.last_served.bucket is None
    failed = [r.getMessage() for r in caplog.records if "packaged model failed" in r.getMessage()]
    assert len(failed) == 1 and "does not match the manifest" in failed[0]


# --- a model that is not packaged --------------------------------------------------------------


def test_a_model_not_packaged_is_onnxruntimes_in_every_argument_form(tmp_path):
    relu = write_relu_onnx(tmp_path / "relu.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    forms = [
        ((str(relu),), {"providers": CPU}),
        ((relu,), {"providers": CPU}),
        ((relu.read_bytes(),), {"providers": CPU}),
        ((str(relu), options), {"providers": [("CPUExecutionProvider", {})]}),
        ((str(relu),), {"sess_options": options, "providers": CPU, "provider_options": [{}]}),
        ((str(relu),), {}),
    ]
    for args, kwargs in forms:
        ours, theirs = ort.InferenceSession(*args, **kwargs), RealSession(*args, **kwargs)
        assert ours.packaged_model is None and ours.last_served is None
        np.testing.assert_array_equal(ours.run(None, {"x": x})[0], theirs.run(None, {"x": x})[0])
        assert ours.get_providers() == theirs.get_providers()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("/no/such/model.onnx",), {"providers": CPU}),
        ((b"not an onnx model",), {"providers": CPU}),
        ((42,), {"providers": CPU}),
        (("MODEL",), {"providers": ["NoSuchExecutionProvider"], "enable_fallback": 0}),
        (("MODEL",), {"providers": CPU, "provider_options": [{}, {}], "enable_fallback": 0}),
    ],
    ids=["missing", "garbage", "type", "provider", "options"],
)
def test_a_model_not_packaged_raises_what_onnxruntime_raises(tmp_path, args, kwargs):
    relu = str(write_relu_onnx(tmp_path / "relu.onnx"))
    args = tuple(relu if a == "MODEL" else a for a in args)
    with pytest.raises(Exception) as theirs:
        RealSession(*args, **kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        ort.InferenceSession(*args, **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_the_module_has_onnxruntimes_public_names():
    public = [n for n in dir(onnxruntime) if not n.startswith("_")]
    assert public and all(hasattr(ort, n) for n in public)
    assert ort.SessionOptions is onnxruntime.SessionOptions
    assert ort.__version__ == onnxruntime.__version__
    assert ort.InferenceSession is InferenceSession


# --- install() ---------------------------------------------------------------------------------


def app_code(model: Path, x: np.ndarray):
    """What an app module does: import onnxruntime inside a function, create, run."""
    import onnxruntime as app_ort

    session = app_ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session, session.run(None, {session.get_inputs()[0].name: x})


def test_install_serves_code_that_imports_onnxruntime_later_and_uninstall_undoes_it(
    convnet, tmp_path, installed
):
    x = conv_input(2)
    session, outputs = app_code(convnet, x)
    assert session.packaged_model == "convnet" and session.last_served.bucket == "b2_16x16"
    assert_same(outputs, plain(convnet, {"x": x}))
    relu = write_relu_onnx(tmp_path / "relu.onnx")
    other, _ = app_code(relu, np.zeros((1, 3, 8, 8), np.float32))
    assert other.packaged_model is None
    retinaface_coreml.uninstall()
    assert onnxruntime.InferenceSession is RealSession
    session, _ = app_code(convnet, x)
    assert type(session) is RealSession and not hasattr(session, "packaged_model")


def test_install_is_idempotent_and_thread_safe():
    barrier = threading.Barrier(8)

    def install() -> None:
        barrier.wait()
        retinaface_coreml.install()

    threads = [threading.Thread(target=install) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert onnxruntime.InferenceSession is InferenceSession
    retinaface_coreml.install()
    retinaface_coreml.uninstall()
    assert onnxruntime.InferenceSession is RealSession
    retinaface_coreml.uninstall()  # a second uninstall changes nothing
    assert onnxruntime.InferenceSession is RealSession


def test_a_file_is_hashed_once_per_version_and_a_changed_one_is_not_taken_for_packaged(
    convnet, tmp_path
):
    copy = tmp_path / "model.onnx"
    shutil.copyfile(convnet, copy)
    wait_settled(copy)  # a file changed a moment ago is hashed each time (hash_memory.py)
    before = hash_memory.hash_count
    for _ in range(3):
        assert ort.InferenceSession(str(copy), providers=CPU).packaged_model == "convnet"
    assert hash_memory.hash_count == before + 1
    # Same size, other bytes (one weight changed): hashed again, and not taken for packaged.
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(convnet))
    weight = numpy_helper.to_array(model.graph.initializer[0]).copy()
    weight[0, 0, 0, 0] += 1.0
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(weight, "w"))
    stat = copy.stat()
    copy.write_bytes(model.SerializeToString())
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert copy.stat().st_size == convnet.stat().st_size
    session = ort.InferenceSession(str(copy), providers=CPU)
    assert session.packaged_model is None
    assert hash_memory.hash_count == before + 2
    x = conv_input(1)
    assert_same(session.run(None, {"x": x}), plain(copy, {"x": x}))
    assert not np.allclose(session.run(None, {"x": x})[0], plain(convnet, {"x": x})[0])


# --- CoreML: the caller's providers and options decide -----------------------------------------


def test_coreml_requested_serves_the_packaged_coreml_path_with_the_callers_options(
    convnet, monkeypatch, tmp_path
):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(backends, "POLL_SECONDS", 0.0)
    events = tmp_path / "events"
    standin.activate(monkeypatch, events, compile_seconds=0.2)
    options = {"ModelFormat": "MLProgram", "MLComputeUnits": "CPUAndNeuralEngine"}
    session = ort.InferenceSession(
        str(convnet), providers=[("CoreMLExecutionProvider", options), "CPUExecutionProvider"]
    )
    x = conv_input(1)
    want = plain(convnet, {"x": x})
    assert_same(session.run(None, {"x": x}), want)
    assert session.last_served.backend == "cpu"  # while the child compiles
    runner = session._runners["b1_16x16"]
    runner.process.wait(timeout=120)
    assert_same(session.run(None, {"x": x}), want)
    assert session.last_served == type(session.last_served)(bucket="b1_16x16", backend="coreml")
    assert session.get_providers() == ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    assert session.get_provider_options()["CoreMLExecutionProvider"]["MLComputeUnits"] == (
        "CPUAndNeuralEngine"
    )
    # The options are part of the cache key: the entry sits under their digest.
    from retinaface_coreml import coreml

    digest = coreml.options_digest(options)
    assert list((tmp_path / "cache").glob(f"*/*/{digest}/convnetb1_16x16*"))
    # CPU alone never touches CoreML, packaged or not.
    cpu = ort.InferenceSession(str(convnet), providers=CPU)
    cpu.run(None, {"x": x})
    assert cpu.last_served.backend == "cpu" and standin.compiles(events) == 1

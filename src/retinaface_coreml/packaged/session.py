"""``InferenceSession``: onnxruntime's session, serving the packaged models from their buckets.

A subclass of onnxruntime's own ``InferenceSession``. Given a model that is not packaged (its
bytes hash to no packaged source), or providers other than the CPU and CoreML EPs, it is
onnxruntime's session, constructed with the very same arguments: the same results, the same
exceptions. Given a packaged source, it serves ``run`` from the package:

* inputs whose shapes are a bucket's run in that bucket (on the CPU EP, as ``last_served``
  says, when the build's CoreML numerical gate refused that bucket for the CoreML options in
  use: backends.py, refusal.py);
* a batch no bucket holds runs as bucket-sized slices when the recipe says batch items are
  independent (``batch_independent``, proved by the build's validation);
* anything else runs the caller's own model (file or bytes) on the CPU EP, with one warning per
  shape naming the recipe line that adds a bucket for it. A feed onnxruntime would refuse (a
  wrong input name, dtype or rank) goes there too, so it raises onnxruntime's own exception.

``get_inputs``/``get_outputs`` report the source model's NodeArgs as the build recorded them.
What the package cannot serve (``io_binding``, ``run_with_ort_values``, ``end_profiling``,
``get_modelmeta``, ``set_providers``...) is served by onnxruntime's CPU session on the source
model, created on first use. A failure inside this layer falls back to onnxruntime, with one
warning.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime
from onnxruntime.capi.onnxruntime_inference_collection import InferenceSession as _OrtSession

from retinaface_coreml import coreml
from retinaface_coreml.artifacts import BucketInfo, ModelRecord
from retinaface_coreml.lazy_logging import get_logger
from retinaface_coreml.packaged import backends, identify

log = get_logger(__name__)

SERVED_EPS = frozenset({coreml.EP, coreml.CPU_EP})
"""The providers a packaged session serves; any other one leaves the call to onnxruntime."""

# onnxruntime's type strings of the tensors a feed may hold, as numpy dtypes.
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True, kw_only=True)
class Served:
    """What served a ``run``: ``bucket`` (None: the source model) and ``backend``
    (``"cpu"``/``"coreml"``); ``slices`` > 1 when a batch ran as bucket-sized slices."""

    bucket: str | None
    backend: str
    slices: int = 1


@dataclass(frozen=True, kw_only=True)
class _Plan:
    target: backends.Target
    backend: str  # "auto" (CoreML requested) or "cpu"
    providers: tuple[str, ...]
    provider_options: Mapping[str, Mapping[str, str]]


class InferenceSession(_OrtSession):
    """``onnxruntime.InferenceSession`` that serves packaged models (see the module docstring).

    ``packaged_model`` is the recipe's name of the model served (None: onnxruntime serves it);
    ``last_served`` is a ``Served`` record of the last ``run`` (None before the first).
    """

    def __init__(
        self,
        path_or_bytes: str | bytes | os.PathLike,
        sess_options: onnxruntime.SessionOptions | None = None,
        providers: Sequence[str | tuple[str, dict[Any, Any]]] | None = None,
        provider_options: Sequence[dict[Any, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        self._plan: _Plan | None = None
        self._last_served: Served | None = None
        try:
            self._plan = _plan(path_or_bytes, sess_options, providers, provider_options, kwargs)
        except Exception as exc:  # never break a call onnxruntime would have served
            log.warning_once(
                ("plan", type(exc).__name__),
                "retinaface_coreml: cannot serve this model from the package (%s: %s); "
                "onnxruntime serves it",
                type(exc).__name__,
                exc,
            )
        if self._plan is None:
            super().__init__(path_or_bytes, sess_options, providers, provider_options, **kwargs)
            return
        self._source_args = (path_or_bytes, sess_options)
        self._source_lock = threading.Lock()
        self._source_open = False
        self._runners = backends.Runners(self._plan.target, backend=self._plan.backend)
        self._broken: str | None = None
        log.info(
            "%s: served from the package (%s)",
            self._plan.target.model.name,
            "CoreML requested" if self._plan.backend == "auto" else "CPU",
        )

    # --- what this session is ---------------------------------------------------------------

    @property
    def packaged_model(self) -> str | None:
        """The packaged model's recipe name, e.g. ``"retinaface"``; None when not packaged."""
        return self._plan.target.model.name if self._plan is not None else None

    @property
    def last_served(self) -> Served | None:
        return self._last_served

    @property
    def model(self) -> ModelRecord | None:
        """The packaged model's manifest record (None when not packaged)."""
        return self._plan.target.model if self._plan is not None else None

    def get_inputs(self) -> Sequence[Any]:
        if self._plan is None:
            return super().get_inputs()
        return list(self._plan.target.model.inputs)

    def get_outputs(self) -> Sequence[Any]:
        if self._plan is None:
            return super().get_outputs()
        return list(self._plan.target.model.outputs)

    def get_providers(self) -> Sequence[str]:
        """The providers serving now: CoreML's first once a bucket runs on it."""
        if self._plan is None:
            return super().get_providers()
        served = self._last_served
        if served is not None:
            coreml_now = served.backend == "coreml"
        else:
            coreml_now = self._plan.backend == "auto" and backends.coreml_available()
        return [coreml.EP, coreml.CPU_EP] if coreml_now else [coreml.CPU_EP]

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        if self._plan is None:
            return super().get_provider_options()
        return {
            name: dict(self._plan.provider_options.get(name, {})) for name in self.get_providers()
        }

    def get_session_options(self) -> onnxruntime.SessionOptions:
        if self._plan is None:
            return super().get_session_options()
        return self._source_args[1] or onnxruntime.SessionOptions()

    # --- run --------------------------------------------------------------------------------

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: onnxruntime.RunOptions | None = None,
    ) -> list[Any]:
        if self._plan is None:
            return super().run(output_names, input_feed, run_options)
        model = self._plan.target.model
        indices = self._output_indices(model, output_names)
        shapes = self._feed_shapes(model, input_feed)
        if indices is None or shapes is None or self._broken is not None:
            return self._run_source(output_names, input_feed, run_options)
        bucket = model.bucket_for_shapes(shapes)
        slices = None if bucket is not None else self._slices(model, shapes)
        if bucket is None and slices is None:
            self._warn_no_bucket(model, shapes)
            return self._run_source(output_names, input_feed, run_options)
        try:
            if bucket is not None:
                runner = self._runners.open(bucket)
                outputs = runner.run(input_feed, run_options)
                served = Served(bucket=bucket.name, backend=runner.backend)
            else:
                bucket, size = slices
                runner = self._runners.open(bucket)
                count = next(iter(shapes.values()))[0]
                parts = [
                    runner.run({k: v[i : i + size] for k, v in input_feed.items()}, run_options)
                    for i in range(0, count, size)
                ]
                outputs = [np.concatenate(column) for column in zip(*parts, strict=True)]
                served = Served(bucket=bucket.name, backend=runner.backend, slices=len(parts))
        except Exception as exc:
            self._broken = f"{type(exc).__name__}: {exc}"
            log.warning_once(
                ("run", model.name, type(exc).__name__),
                "%s: the packaged model failed (%s); onnxruntime serves the source model from now",
                model.name,
                self._broken,
            )
            return self._run_source(output_names, input_feed, run_options)
        self._last_served = served
        return [outputs[i] for i in indices]

    @staticmethod
    def _output_indices(model: ModelRecord, output_names: Sequence[str] | None) -> list[int] | None:
        names = model.output_names
        if not output_names:
            return list(range(len(names)))
        if any(name not in names for name in output_names):
            return None  # onnxruntime says which one is wrong
        return [names.index(name) for name in output_names]

    @staticmethod
    def _feed_shapes(
        model: ModelRecord, input_feed: Mapping[str, Any]
    ) -> dict[str, tuple[int, ...]] | None:
        """Each input's shape when the feed is one onnxruntime takes as it is, else None."""
        if not isinstance(input_feed, Mapping) or set(input_feed) != {i.name for i in model.inputs}:
            return None
        shapes = {}
        for node in model.inputs:
            value = input_feed[node.name]
            dtype = _DTYPES.get(node.type)
            if not isinstance(value, np.ndarray) or dtype is None or value.dtype != dtype:
                return None
            if value.ndim != len(node.shape) or any(
                isinstance(dim, int) and dim != size
                for dim, size in zip(node.shape, value.shape, strict=True)
            ):
                return None
            shapes[node.name] = value.shape
        return shapes

    @staticmethod
    def _slices(
        model: ModelRecord, shapes: Mapping[str, tuple[int, ...]]
    ) -> tuple[BucketInfo, int] | None:
        """The bucket a batch runs in as slices of its batch size, when items are independent."""
        if not model.batch_independent:
            return None
        batches = {shape[0] for shape in shapes.values() if shape}
        if len(batches) != 1 or any(not shape for shape in shapes.values()):
            return None
        (count,) = batches
        fitting = [
            b
            for b in model.buckets
            if all(b.inputs[n][1:] == s[1:] for n, s in shapes.items())
            and len({shape[0] for shape in b.inputs.values()}) == 1
            and b.batch > 0
            and count % b.batch == 0
        ]
        if not fitting:
            return None
        best = max(fitting, key=lambda b: b.batch)
        return best, best.batch

    def _warn_no_bucket(self, model: ModelRecord, shapes: Mapping[str, tuple[int, ...]]) -> None:
        inputs = ", ".join(f"{n} = {list(s)}" for n, s in shapes.items())
        log.warning_once(
            ("shape", model.name, tuple(sorted(shapes.items()))),
            "%s: no packaged bucket takes inputs {%s}; running the source model on the CPU. To "
            "serve them from the package (CoreML on macOS), add to models/%s.toml:  "
            '[[buckets]] name = "..." inputs = { %s }  and rebuild (`make models`)',
            model.name,
            inputs,
            model.name,
            inputs,
        )

    def _run_source(self, output_names, input_feed, run_options) -> list[Any]:
        self._open_source()
        outputs = super().run(output_names, input_feed, run_options)
        self._last_served = Served(bucket=None, backend="cpu")
        return outputs

    # --- what onnxruntime's CPU session on the source model serves ---------------------------

    def _open_source(self) -> None:
        """Become onnxruntime's CPU session on the caller's model, once."""
        if self._source_open:
            return
        with self._source_lock:
            if not self._source_open:
                path_or_bytes, sess_options = self._source_args
                _OrtSession.__init__(self, path_or_bytes, sess_options, providers=[coreml.CPU_EP])
                self._source_open = True

    def set_providers(self, providers=None, provider_options=None) -> None:
        """onnxruntime's: the session becomes onnxruntime's own on these providers."""
        if self._plan is not None:
            self._open_source()
            self._plan = None
        super().set_providers(providers, provider_options)


SERVED_HERE = frozenset(
    {"run", "get_inputs", "get_outputs", "get_providers", "get_provider_options"}
    | {"get_session_options", "set_providers"}
)
"""The methods a packaged session answers itself; every other public one of onnxruntime's
session (``io_binding``, ``get_modelmeta``, ``end_profiling``...) runs on its CPU session on
the source model, opened on first use."""


def _on_source(name: str):
    method = getattr(_OrtSession, name)

    @functools.wraps(method)
    def on_source(self: InferenceSession, *args: Any, **kwargs: Any) -> Any:
        if self._plan is not None:
            self._open_source()
        return method(self, *args, **kwargs)

    return on_source


for _name in dir(_OrtSession):
    if _name[0] != "_" and _name not in SERVED_HERE and callable(getattr(_OrtSession, _name)):
        setattr(InferenceSession, _name, _on_source(_name))


def _plan(
    path_or_bytes: object,
    sess_options: object,
    providers: Sequence[Any] | None,
    provider_options: Sequence[Mapping[str, Any]] | None,
    kwargs: Mapping[str, Any],
) -> _Plan | None:
    """How to serve this model from the package; None leaves it to onnxruntime unchanged."""
    if kwargs:
        return None  # internal knobs (disabled_optimizers...): onnxruntime's business
    chosen = _providers(providers, provider_options)
    if chosen is None:
        return None
    manifest = identify.installed_manifest()
    if manifest is None:
        return None
    model = identify.packaged_model(path_or_bytes, manifest)
    if model is None:
        return None
    wants_coreml = coreml.EP in chosen
    options = None
    if wants_coreml and chosen[coreml.EP]:
        # The caller's options, key by key over the recipe's; where the cache lives is ours.
        options = {**backends.recipe_options(model), **chosen[coreml.EP]}
        options.pop(coreml.CACHE_DIR_OPTION, None)
    target = backends.target(manifest, model, options, session_options=sess_options)
    return _Plan(
        target=target,
        backend="auto" if wants_coreml else "cpu",
        providers=tuple(chosen),
        provider_options={
            name: ({**target.options} if name == coreml.EP else dict(opts))
            for name, opts in chosen.items()
        },
    )


def _providers(
    providers: Sequence[Any] | None, provider_options: Sequence[Mapping[str, Any]] | None
) -> dict[str, dict[str, str]] | None:
    """The requested providers with their options, when all are ours to serve; else None."""
    if providers is None:
        available = set(onnxruntime.get_available_providers())
        if available - {coreml.CPU_EP, "AzureExecutionProvider"}:
            return None  # onnxruntime asks for explicit providers here: let it say so
        return {coreml.CPU_EP: {}}
    if isinstance(providers, str) or not providers:
        return None
    if provider_options is not None and len(provider_options) != len(providers):
        return None
    chosen: dict[str, dict[str, str]] = {}
    for index, provider in enumerate(providers):
        if isinstance(provider, tuple) and len(provider) == 2 and isinstance(provider[1], dict):
            if provider_options is not None:
                return None
            name, options = provider
        elif isinstance(provider, str):
            name = provider
            options = provider_options[index] if provider_options is not None else {}
        else:
            return None
        if name not in SERVED_EPS or name in chosen:
            return None
        chosen[name] = {str(k): str(v) for k, v in options.items()}
    return chosen

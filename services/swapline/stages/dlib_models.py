"""Loads dlib's models from the face-recognition-models package.

The package's own ``__init__`` imports ``pkg_resources`` (gone from
setuptools >= 81), so its data files are located without importing it.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import dlib

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR = "mmod_human_face_detector.dat"
FACE_EMBEDDING = "dlib_face_recognition_resnet_model_v1.dat"


@cache
def models_dir() -> Path:
    """The folder holding the face-recognition-models ``.dat`` files."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face-recognition-models is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_path(name: str) -> Path:
    path = models_dir() / name
    if not path.is_file():
        raise RuntimeError(f"dlib model file missing: {path}")
    return path


HOG = "hog"
_PER_THREAD = frozenset({HOG})

_local = threading.local()
_shared: dict[str, tuple[Any, threading.Lock]] = {}
_loading = threading.Lock()


def _load(name: str) -> Any:
    if name == HOG:
        return dlib.get_frontal_face_detector()
    if name == CNN_DETECTOR:
        return dlib.cnn_face_detection_model_v1(str(model_path(name)))
    if name == LANDMARKS_68:
        return dlib.shape_predictor(str(model_path(name)))
    if name == FACE_EMBEDDING:
        return dlib.face_recognition_model_v1(str(model_path(name)))
    raise KeyError(name)


@contextmanager
def using(name: str) -> Iterator[Any]:
    """A dlib model for the duration of one call.

    dlib's Python objects are not documented as thread-safe. The HOG detector
    releases the GIL while it runs, so each thread gets its own (cheap) copy
    and threads detect in parallel. The other bindings hold the GIL for the
    whole call, so one instance per process, used under a lock, loses no
    parallelism and saves a copy per thread (the landmark model is 100 MB).
    """
    if name in _PER_THREAD:
        models: dict[str, Any] = _local.__dict__.setdefault("models", {})
        if name not in models:
            models[name] = _load(name)
        yield models[name]
        return
    with _loading:
        if name not in _shared:
            _shared[name] = (_load(name), threading.Lock())
        model, lock = _shared[name]
    with lock:
        yield model


def warm(names: Iterable[str]) -> None:
    """Loads ``names`` now (for the calling thread where models are per
    thread), so that the first frames do not pay for it."""
    for name in names:
        with using(name):
            pass

"""Loads dlib's models from the face-recognition-models package.

The package's own ``__init__`` imports ``pkg_resources`` (gone from
setuptools >= 81), so its data files are located without importing it.
"""

from __future__ import annotations

import importlib.util
import threading
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


_local = threading.local()


def per_thread(name: str) -> Any:
    """A dlib model instance private to the calling thread.

    dlib's Python objects are not documented as thread-safe, and the stage
    servers run work on a thread pool, so each worker thread loads its own.
    """
    cache_: dict[str, Any] = _local.__dict__.setdefault("models", {})
    model = cache_.get(name)
    if model is None:
        if name == "hog":
            model = dlib.get_frontal_face_detector()
        elif name == CNN_DETECTOR:
            model = dlib.cnn_face_detection_model_v1(str(model_path(name)))
        elif name == LANDMARKS_68:
            model = dlib.shape_predictor(str(model_path(name)))
        elif name == FACE_EMBEDDING:
            model = dlib.face_recognition_model_v1(str(model_path(name)))
        else:
            raise KeyError(name)
        cache_[name] = model
    return model

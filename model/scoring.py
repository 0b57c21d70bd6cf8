"""Scoring-side helpers for Spark Python workers: TensorFlow thread limits and one model load per process.

A pandas UDF cannot capture a Keras model in its closure (it does not pickle) and must not reload it per
batch (a model captured in a UDF closure does not pickle, or reloads every batch): workers call
:func:`cached_forecaster`, which loads each version once per process.
"""

from __future__ import annotations

import threading
from pathlib import Path

from model.registry import Forecaster, load_forecaster

_lock = threading.Lock()
_loaded: dict[tuple[str, str], Forecaster] = {}
_threads: int | None = None


def limit_tf_threads(n: int) -> None:
    """Size TensorFlow's thread pools to the task's cores, before the first TF op: by default each Python worker sizes
    them to every core, and several workers oversubscribe the CPU. Once per process: later calls with another count are
    ignored, since TF cannot resize running pools."""
    global _threads
    with _lock:
        if _threads is not None:
            return
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:  # TF already ran an op in this process: its pools are fixed
            pass
        _threads = n


def cached_forecaster(registry: str | Path, version: str) -> Forecaster:
    """The forecaster of ``version``, loaded once per Python process (ModelError when missing or corrupt); a
    blend's trees use the threads given to :func:`limit_tf_threads`, like TensorFlow."""
    key = (str(registry), version)
    with _lock:
        if key not in _loaded:
            _loaded[key] = load_forecaster(registry, version, _threads)
        return _loaded[key]

"""Importing TensorFlow/Keras quietly.

TensorFlow's native code logs banners to the process's stderr while it
loads (the oneDNN notice, absl's 'before InitializeLog' warning), whatever
TF_CPP_MIN_LOG_LEVEL says. tinyq's users should see tinyq's output only, so
the import runs with file descriptor 2 pointed at /dev/null.
"""

from __future__ import annotations

import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _native_stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def tensorflow():
    if "tensorflow" not in sys.modules:
        with _native_stderr_silenced():
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
    return sys.modules["tensorflow"]


def keras():
    tensorflow()
    import keras as k

    return k

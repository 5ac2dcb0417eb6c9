"""Reading what a run wrote to TensorBoard, for tests."""

import glob
import os

import tensorflow as tf


def read_events(logdir):
    """tag -> [(step, summary value), ...] over every events file in ``logdir``, in file order."""
    out = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value))
    return out

"""The linear text probe: recovers scenes from features that hold them, not from features that do not."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data.css_cells import NUM_CODES
from t2i_tf.errors import UserError
from t2i_tf.eval.text_probe import CellProbe, _targets, caption_features, probe_scores


def _random_cells(rng, n):
    cells = rng.integers(1, NUM_CODES, size=[n, 9])
    return np.where(rng.random([n, 9]) < 0.5, 0, cells).astype(np.int64)


def test_a_linear_code_of_the_scene_is_read_back_exactly():
    rng = np.random.default_rng(0)
    train, test = _random_cells(rng, 600), _random_cells(rng, 200)
    mix = rng.normal(size=[_targets(train).shape[1], 200])  # a random (invertible on its span) linear code
    scores = probe_scores(_targets(train) @ mix, train, _targets(test) @ mix, test, ridge=1e-3)
    assert scores["cell_accuracy"] == 1.0 and scores["object_f1"] == 1.0 and scores["scene_accuracy"] == 1.0


def test_features_without_the_scene_give_chance_level_objects():
    rng = np.random.default_rng(1)
    train, test = _random_cells(rng, 600), _random_cells(rng, 200)
    scores = probe_scores(rng.normal(size=[600, 32]), train, rng.normal(size=[200, 32]), test)
    assert scores["object_f1"] < 0.1
    assert 0.35 < scores["occupancy_accuracy"] < 0.65  # empty vs occupied is a coin toss here


def test_targets_are_one_hot_per_head_and_empty_cells_have_no_attributes():
    cells = np.zeros([2, 9], np.int64)
    cells[1, 4] = 1  # small gray rectangle in the center
    t = _targets(cells)
    width = 2 + 2 + 8 + 3
    assert t.shape == (2, 9 * width)
    assert t[0].sum() == 9  # every cell: "not occupied" only
    center = t[1, 4 * width:5 * width]
    assert center.tolist() == [0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]


def test_bad_input_is_a_clear_error():
    with pytest.raises(UserError, match="ridge"):
        CellProbe(ridge=0)
    with pytest.raises(UserError, match="must agree"):
        CellProbe().fit(np.zeros([3, 2]), np.zeros([2, 9], np.int64))
    with pytest.raises(UserError, match="fit before"):
        CellProbe().predict(np.zeros([1, 2]))


class _QueryTask:
    """A generator task whose records are not text-to-image ones (as stackgan_tirg's queries): the probe must read
    them through eval_batches, split by split."""
    name = "fake"

    def __init__(self, cells_by_split):
        self.cells_by_split = cells_by_split
        self.splits_read = []

    def eval_batches(self, num_images, batch_size, split=None):
        self.splits_read.append(split)
        cells = self.cells_by_split[split][:num_images]
        for start in range(0, len(cells), batch_size):
            c = cells[start:start + batch_size]
            yield {"image": np.zeros([len(c), 2, 2, 3], np.float32), "scene_cells": tf.constant(c),
                   "features": np.asarray(c, np.float32)}

    def matching_features(self, images, batch):
        return None, batch["features"]


def test_caption_features_read_the_named_split_through_the_task():
    rng = np.random.default_rng(0)
    task = _QueryTask({"train": rng.integers(0, 20, [7, 9]), "test": rng.integers(0, 20, [5, 9])})
    feats, cells = caption_features(task, "train", num_records=6, batch_size=4)
    assert task.splits_read == ["train"]
    np.testing.assert_array_equal(cells, task.cells_by_split["train"][:6])
    np.testing.assert_array_equal(feats, task.cells_by_split["train"][:6].astype(np.float32))
    _, test_cells = caption_features(task, "test", num_records=10, batch_size=4)
    assert task.splits_read == ["train", "test"] and len(test_cells) == 5

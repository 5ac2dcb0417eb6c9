"""Recall@K on a tiny gallery computed by hand."""

import numpy as np
import pytest

from t2i_tf.eval.retrieval import recall_at_k, top_k_gallery


def test_recall_by_hand():
    # Gallery of 4 unit vectors; labels: images 1 and 3 show the same scene.
    gallery = np.eye(4, dtype=np.float32)
    labels = np.array([10, 11, 12, 11])
    # q0 is closest to 0 (its own source, excluded), then 1; target label 11 -> hit at 1.
    # q1 is closest to 2 then 3; target label 11 -> miss at 1, hit at 2.
    # q2 is closest to 0 (not excluded), target 12 is ranked 3rd.
    queries = np.array([[1.0, 0.5, 0.1, 0.0], [0.0, 0.1, 1.0, 0.5], [1.0, 0.3, 0.2, 0.0]], np.float32)
    target_labels = np.array([11, 11, 12])
    sources = np.array([0, 0, 3])
    r = recall_at_k(queries, gallery, labels, target_labels, sources, ks=(1, 2, 3))
    assert r[1] == pytest.approx(100 / 3)
    assert r[2] == pytest.approx(200 / 3)
    assert r[3] == pytest.approx(100.0)


def test_source_exclusion_matters():
    gallery = np.eye(3, dtype=np.float32)
    labels = np.array([0, 1, 2])
    q = np.array([[1.0, 0.2, 0.0]], np.float32)
    assert recall_at_k(q, gallery, labels, np.array([0]), None, ks=(1,))[1] == 100.0
    assert recall_at_k(q, gallery, labels, np.array([0]), np.array([0]), ks=(1,))[1] == 0.0


def test_batched_equals_unbatched():
    rng = np.random.default_rng(0)
    g, q = rng.normal(size=(50, 8)), rng.normal(size=(37, 8))
    labels, tl, src = rng.integers(0, 10, 50), rng.integers(0, 10, 37), rng.integers(0, 50, 37)
    assert recall_at_k(q, g, labels, tl, src, batch_size=5) == recall_at_k(q, g, labels, tl, src, batch_size=1000)


def test_top_k_gallery_order():
    g = np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32)
    idx, sims = top_k_gallery(np.array([1.0, 0.0]), g, k=2)
    assert idx.tolist() == [0, 1] and sims[0] == pytest.approx(1.0)
    idx, _ = top_k_gallery(np.array([1.0, 0.0]), g, k=2, exclude=0)
    assert idx.tolist() == [1, 2]

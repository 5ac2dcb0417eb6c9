"""Metric losses against direct (loop) computations of the paper's definitions."""

import numpy as np
import tensorflow as tf

from t2i_tf.losses.metric import batch_classification_loss, pairwise_sq_distances, soft_triplet_loss


def _direct_soft_triplet(q, t, labels=None):
    """Loop version: items [q; t], anchor a, positive its pair, mean over negatives of log(1+exp(dp-dn))."""
    n = len(q)
    items = np.concatenate([q, t])
    pair = np.concatenate([np.arange(n), np.arange(n)])
    lab = None if labels is None else np.concatenate([labels, labels])
    per_anchor = []
    for a in range(2 * n):
        p = a + n if a < n else a - n
        dp = np.sum((items[a] - items[p]) ** 2)
        losses = []
        for k in range(2 * n):
            is_neg = pair[k] != pair[a] if lab is None else lab[k] != lab[a]
            if is_neg:
                dn = np.sum((items[a] - items[k]) ** 2)
                losses.append(np.log1p(np.exp(dp - dn)))
        per_anchor.append(np.mean(losses))
    per_anchor = np.array(per_anchor)
    return 0.5 * (per_anchor[:n] + per_anchor[n:])


def test_pairwise_sq_distances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    want = ((a[:, None, :] - b[None]) ** 2).sum(-1)
    np.testing.assert_allclose(pairwise_sq_distances(tf.constant(a), tf.constant(b)).numpy(), want, rtol=1e-6, atol=1e-9)


def test_soft_triplet_matches_direct_computation():
    rng = np.random.default_rng(1)
    q, t = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    got = soft_triplet_loss(tf.constant(q), tf.constant(t)).numpy()
    np.testing.assert_allclose(got, _direct_soft_triplet(q, t), rtol=1e-6)


def test_soft_triplet_with_labels_excludes_same_label_items():
    rng = np.random.default_rng(2)
    q, t = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    labels = np.array([0, 1, 0, 2, 3, 1])
    got = soft_triplet_loss(tf.constant(q), tf.constant(t), labels=tf.constant(labels)).numpy()
    np.testing.assert_allclose(got, _direct_soft_triplet(q, t, labels), rtol=1e-6)
    assert not np.allclose(got, _direct_soft_triplet(q, t))  # the labels changed the negatives


def test_soft_triplet_local_slice_of_global_batch():
    """A replica's loss on its slice (with the gathered batch) equals the global loss on those rows."""
    rng = np.random.default_rng(3)
    q, t = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    full = soft_triplet_loss(tf.constant(q), tf.constant(t)).numpy()
    part = soft_triplet_loss(tf.constant(q[4:]), tf.constant(t[4:]), tf.constant(q), tf.constant(t), offset=4).numpy()
    np.testing.assert_allclose(part, full[4:], rtol=1e-6)


def test_soft_triplet_prefers_correct_pairs():
    t = np.eye(4) * 3.0
    good = soft_triplet_loss(tf.constant(t + 0.01), tf.constant(t)).numpy().mean()
    bad = soft_triplet_loss(tf.constant(np.roll(t, 1, axis=0)), tf.constant(t)).numpy().mean()
    assert good < 0.1 < bad


def test_batch_classification_matches_softmax_cross_entropy():
    rng = np.random.default_rng(4)
    q, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    logits = q @ t.T
    want = -np.log(np.exp(logits[np.arange(5), np.arange(5)]) / np.exp(logits).sum(1))
    np.testing.assert_allclose(batch_classification_loss(tf.constant(q), tf.constant(t)).numpy(), want, rtol=1e-6)
    part = batch_classification_loss(tf.constant(q[3:]), tf.constant(t[3:]), tf.constant(t), offset=3).numpy()
    np.testing.assert_allclose(part, want[3:], rtol=1e-6)

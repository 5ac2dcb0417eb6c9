"""Metric losses against direct (loop) computations of the paper's definitions."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.losses.metric import (batch_classification_loss, pairwise_sq_distances, sample_triplet_negatives,
                                  sampled_soft_triplet_loss, soft_triplet_loss)


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


# ---- google/tirg's sampled soft triplet (img_text_composition_models.py:70-83, torch_functions.py:54-102)
def _official_triplets(n, negatives):
    """The (i, j, k) triplets over items [q; t], in google/tirg's layout, with k taken from ``negatives``."""
    return [(i, (i + n) % (2 * n), int(k)) for i in range(2 * n) for k in negatives[i]]


def _official_forward_backward(features, triplets):
    """MyTripletLossFunc.forward / .backward, transcribed loop by loop (numpy, float64)."""
    d = ((features[:, None] - features[None]) ** 2).sum(-1)
    loss = np.mean([np.log(1 + np.exp(d[i, j] - d[i, k])) for i, j, k in triplets])
    grad = np.zeros_like(features)
    for i, j, k in triplets:
        f = 1.0 - 1.0 / (1.0 + np.exp(d[i, j] - d[i, k]))
        grad[i] += f * (features[i] - features[j]) / len(triplets)
        grad[j] += f * (features[j] - features[i]) / len(triplets)
        grad[i] += -f * (features[i] - features[k]) / len(triplets)
        grad[k] += -f * (features[k] - features[i]) / len(triplets)
    return loss, grad


def test_sampled_negatives_are_other_pairs_distinct_and_seeded():
    n = 5
    idx, valid = sample_triplet_negatives(n, 3, tf.constant([7, 0], tf.int64))
    idx = idx.numpy()
    assert idx.shape == (2 * n, 3) and valid.numpy().all()
    for i, row in enumerate(idx):
        assert len(set(row)) == 3 and all(k % n != i % n for k in row)
    again, _ = sample_triplet_negatives(n, 3, tf.constant([7, 0], tf.int64))
    other, _ = sample_triplet_negatives(n, 3, tf.constant([7, 1], tf.int64))
    np.testing.assert_array_equal(idx, again.numpy())
    assert not np.array_equal(idx, other.numpy())


def test_sampled_negatives_are_uniform():
    """Every one of an anchor's 2N - 2 negatives is drawn about equally often (3 of 8 each time)."""
    counts = np.zeros(10)
    for step in range(400):
        idx, _ = sample_triplet_negatives(5, 3, tf.constant([0, step], tf.int64))
        counts += np.bincount(idx.numpy()[0], minlength=10)
    assert counts[0] == counts[5] == 0
    np.testing.assert_allclose(counts[[1, 2, 3, 4, 6, 7, 8, 9]] / 400, 3 / 8, atol=0.08)


def test_too_few_negatives_are_masked():
    idx, valid = sample_triplet_negatives(2, 3, tf.constant([0, 0], tf.int64))  # 2 negatives per anchor
    assert valid.numpy().sum(axis=1).tolist() == [2, 2, 2, 2]
    assert idx.numpy().max() <= 3


def test_sampled_soft_triplet_equals_official_forward_and_backward():
    """Value = the official forward; gradient = the official hand-written backward (half of autodiff's)."""
    rng = np.random.default_rng(5)
    n, seed = 6, tf.constant([3, 9], tf.int64)
    q, t = tf.constant(rng.normal(size=(n, 4))), tf.constant(rng.normal(size=(n, 4)))
    with tf.GradientTape() as tape:
        tape.watch([q, t])
        per_example = sampled_soft_triplet_loss(q, t, num_negatives=3, seed=seed)
        loss = tf.reduce_mean(per_example)
    gq, gt = tape.gradient(loss, [q, t])
    idx, _ = sample_triplet_negatives(n, 3, seed)
    want_loss, want_grad = _official_forward_backward(np.concatenate([q.numpy(), t.numpy()]),
                                                      _official_triplets(n, idx.numpy()))
    assert float(loss) == pytest.approx(want_loss, rel=1e-9)
    np.testing.assert_allclose(np.concatenate([gq.numpy(), gt.numpy()]), want_grad, rtol=1e-9, atol=1e-12)
    # ... which is half the derivative of the value (finite differences of the forward, fixed negatives)
    eps, bump = 1e-6, np.zeros((n, 4))
    bump[2, 1] = eps
    value = lambda qq: float(tf.reduce_mean(sampled_soft_triplet_loss(tf.constant(qq), t, seed=seed)))  # noqa: E731
    slope = (value(q.numpy() + bump) - value(q.numpy() - bump)) / (2 * eps)
    assert slope == pytest.approx(2 * gq.numpy()[2, 1], rel=1e-5)


def test_sampled_soft_triplet_local_slice_of_global_batch():
    rng = np.random.default_rng(6)
    q, t = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    seed = tf.constant([1, 2], tf.int64)
    full = sampled_soft_triplet_loss(tf.constant(q), tf.constant(t), seed=seed).numpy()
    part = sampled_soft_triplet_loss(tf.constant(q[4:]), tf.constant(t[4:]), tf.constant(q), tf.constant(t),
                                     offset=4, seed=seed).numpy()
    np.testing.assert_allclose(part, full[4:], rtol=1e-9)

"""Metric-learning losses for composed retrieval (TIRG's ``soft_triplet`` and
``batch_based_classification``), vectorised and replica-aware.

Both return PER-EXAMPLE losses for the local (per-replica) queries; the caller
reduces them with ``tf.nn.compute_average_loss(global_batch_size=...)``.
Candidates (the other side of each comparison) may be the all-gathered global
batch, so a multi-replica step sees the same negatives as one device would.
"""

from __future__ import annotations

import tensorflow as tf


def pairwise_sq_distances(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Squared Euclidean distances [Na, Nb] between rows of a and rows of b."""
    aa = tf.reduce_sum(a * a, axis=1, keepdims=True)
    bb = tf.reduce_sum(b * b, axis=1, keepdims=True)
    return tf.maximum(aa - 2.0 * tf.matmul(a, b, transpose_b=True) + tf.transpose(bb), 0.0)


def soft_triplet_loss(
    queries: tf.Tensor,
    targets: tf.Tensor,
    all_queries: tf.Tensor | None = None,
    all_targets: tf.Tensor | None = None,
    labels: tf.Tensor | None = None,
    all_labels: tf.Tensor | None = None,
    offset: tf.Tensor | int = 0,
) -> tf.Tensor:
    """TIRG's soft triplet loss, per local query [n].

    The items are the 2N embeddings [queries; targets] of the (global) batch;
    query i and target i are each other's positive. Every item is an anchor:
    its loss is the mean over its negatives k of log(1 + exp(d(a, p) - d(a, k)))
    with squared Euclidean d; negatives are the items of the other pairs (whose
    target label differs, when labels are given). The reference samples 3
    negatives per anchor; the mean over all of them is that estimator's
    expectation. A query's per-example loss averages its two anchors (the
    query and its target), so the batch mean equals the mean over anchors.

    ``all_*`` are the global batch (defaults: the local one); ``offset`` is the
    index of the first local pair inside the global batch.
    """
    all_queries = queries if all_queries is None else all_queries
    all_targets = targets if all_targets is None else all_targets
    n_local = tf.shape(queries)[0]
    n_global = tf.shape(all_queries)[0]
    local_idx = tf.range(n_local) + offset
    candidates = tf.concat([all_queries, all_targets], axis=0)  # [2N, D]
    cand_pair = tf.concat([tf.range(n_global), tf.range(n_global)], axis=0)  # pair id of each item

    def anchor_losses(anchors, positives):
        d = pairwise_sq_distances(anchors, candidates)  # [n, 2N]
        d_pos = tf.reduce_sum(tf.square(anchors - positives), axis=1, keepdims=True)  # [n, 1]
        if labels is None:
            negative = tf.not_equal(local_idx[:, None], cand_pair[None, :])
        else:
            glabels = labels if all_labels is None else all_labels
            cand_labels = tf.concat([glabels, glabels], axis=0)
            negative = tf.not_equal(labels[:, None], cand_labels[None, :])
        negative = tf.cast(negative, d.dtype)
        per_triplet = tf.math.softplus(d_pos - d) * negative
        return tf.reduce_sum(per_triplet, axis=1) / tf.maximum(tf.reduce_sum(negative, axis=1), 1.0)

    return 0.5 * (anchor_losses(queries, targets) + anchor_losses(targets, queries))


def batch_classification_loss(
    queries: tf.Tensor,
    targets: tf.Tensor,
    all_targets: tf.Tensor | None = None,
    offset: tf.Tensor | int = 0,
) -> tf.Tensor:
    """TIRG's ``batch_based_classification``: softmax over the batch's targets, per local query [n].

    Logits are query . target (the embeddings carry the learnable scale); the
    correct class of local query i is its own target, at ``offset + i`` in the
    global batch.
    """
    all_targets = targets if all_targets is None else all_targets
    logits = tf.matmul(queries, all_targets, transpose_b=True)
    labels = tf.range(tf.shape(queries)[0]) + offset
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


LOSSES = ("soft_triplet", "batch_based_classification")

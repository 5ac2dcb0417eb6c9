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
    negatives per anchor and halves the gradient (:func:`sampled_soft_triplet_loss`,
    the paper preset's); this all-negatives mean (full gradient) is the
    ``triplet_negatives=0`` option. A query's per-example loss averages its two anchors (the
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


def _mix32(x: tf.Tensor) -> tf.Tensor:
    """murmur3's 32-bit finaliser: a bijective integer hash (uint32)."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16)) * tf.constant(0x85EBCA6B, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 13)) * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def hashed_uniform(rows: tf.Tensor | int, cols: tf.Tensor | int, seed: tf.Tensor) -> tf.Tensor:
    """Uniform [0, 1) numbers [rows, cols] from an int64 seed [2] by integer hashing: unlike TF's stateless
    random ops (whose Philox counters differ under XLA), the same numbers with and without jit_compile."""
    seed = tf.cast(seed, tf.int64)
    words = tf.cast(tf.stack([seed[0], seed[0] // 2**32, seed[1], seed[1] // 2**32]) % 2**32, tf.uint32)
    key = tf.constant(0x9E3779B9, tf.uint32)
    for i in range(4):
        key = _mix32(tf.bitwise.bitwise_xor(key, words[i]) + tf.constant(0x7F4A7C15 * (i + 1) % 2**32, tf.uint32))
    cells = tf.cast(tf.range(tf.cast(rows, tf.int64) * tf.cast(cols, tf.int64)) % 2**32, tf.uint32)
    bits = _mix32(_mix32(tf.bitwise.bitwise_xor(cells, key)) + key)
    u = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (1.0 / 2**24)
    return tf.reshape(u, tf.stack([rows, cols]))


def sample_triplet_negatives(n_pairs: tf.Tensor | int, num_negatives: int, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """google/tirg's negative sampling over the 2N items [queries; targets] of a batch of N pairs.

    Item i's negatives are the 2N - 2 items of the other pairs (pair ids ``range(N) + range(N)``);
    the reference shuffles them and keeps the first 3 (img_text_composition_models.py:72-81), i.e.
    ``num_negatives`` drawn uniformly without replacement. Returns (indices [2N, k], valid [2N, k]
    float: 0 where fewer than k negatives exist). Stateless: the same ``seed`` (shape [2] int) gives
    the same draw on every replica and every re-run.
    """
    n2 = 2 * n_pairs
    pair = tf.concat([tf.range(n_pairs), tf.range(n_pairs)], axis=0)
    scores = hashed_uniform(n2, n2, seed)  # [0, 1)
    scores = tf.where(tf.equal(pair[:, None], pair[None, :]), -1.0, scores)
    scores = tf.concat([scores, -tf.ones(tf.stack([n2, num_negatives]))], axis=1)  # k columns even when 2N < k
    top, idx = tf.math.top_k(scores, k=num_negatives)
    return tf.minimum(idx, n2 - 1), tf.cast(top >= 0.0, tf.float32)


def sampled_soft_triplet_loss(
    queries: tf.Tensor,
    targets: tf.Tensor,
    all_queries: tf.Tensor | None = None,
    all_targets: tf.Tensor | None = None,
    offset: tf.Tensor | int = 0,
    num_negatives: int = 3,
    seed: tf.Tensor | tuple[int, int] = (0, 0),
) -> tf.Tensor:
    """google/tirg's soft triplet loss (forward and backward), per local query [n].

    Every item a of the global batch's [queries; targets] is an anchor, its pair's other item p the
    positive, ``num_negatives`` sampled negatives k (:func:`sample_triplet_negatives`). The official
    forward is the mean over all these triplets of log(1 + exp(d(a, p) - d(a, k))), squared Euclidean d
    (torch_functions.py:69-78). Its hand-written backward (torch_functions.py:80-102) uses
    f_a - f_p where the gradient of ||f_a - f_p||^2 is 2 (f_a - f_p): it is exactly half the autodiff
    gradient. So each per-example loss here is ``0.5 * l + stop_gradient(0.5 * l)``: its value is the
    official forward's, its gradient the official backward's.

    A local query's per-example loss is the mean triplet loss of its two anchors (query i, target i);
    their mean over the global batch (``tf.nn.compute_average_loss``) is the official loss. ``offset``
    is the index of the first local pair inside the global batch.
    """
    all_queries = queries if all_queries is None else all_queries
    all_targets = targets if all_targets is None else all_targets
    n_local = tf.shape(queries)[0]
    n_global = tf.shape(all_queries)[0]
    items = tf.concat([all_queries, all_targets], axis=0)  # [2N, D]
    idx, valid = sample_triplet_negatives(n_global, num_negatives, seed)
    valid = tf.cast(valid, items.dtype)
    local = tf.range(n_local) + offset

    def anchor_losses(anchors, positives, rows):
        # The k distinct sampled negatives as a 0/1 mask over the 2N items (no gather: its IndexedSlices
        # gradient differs under XLA).
        chosen = tf.reduce_max(tf.one_hot(tf.gather(idx, rows), 2 * n_global, dtype=items.dtype)
                               * tf.gather(valid, rows)[:, :, None], axis=1)  # [n, 2N]
        d = pairwise_sq_distances(anchors, items)  # [n, 2N]
        d_pos = tf.reduce_sum(tf.square(anchors - positives), axis=1, keepdims=True)  # [n, 1]
        return tf.reduce_sum(tf.math.softplus(d_pos - d) * chosen, axis=1) / tf.maximum(
            tf.reduce_sum(chosen, axis=1), 1.0)

    loss = 0.5 * (anchor_losses(queries, targets, local) + anchor_losses(targets, queries, local + n_global))
    return 0.5 * loss + tf.stop_gradient(0.5 * loss)


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

"""Recall@K for composed retrieval with the official TIRG/CSS protocol.

Gallery = all images of the split; each query's source image is removed from
its ranking; a query hits at K when one of the top-K gallery images has the
target's label (identical scenes share a label). Batched matrix products.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf


def recall_at_k(
    query_emb: np.ndarray,
    gallery_emb: np.ndarray,
    gallery_labels: np.ndarray,
    target_labels: np.ndarray,
    source_ids: np.ndarray | None = None,
    ks: Sequence[int] = (1, 5, 10, 50),
    batch_size: int = 1024,
) -> dict[int, float]:
    """Recall@K in percent for each K in ``ks`` (cosine similarity ranking)."""
    query_emb = np.asarray(query_emb, np.float32)
    gallery_emb = np.asarray(gallery_emb, np.float32)
    gallery_labels = np.asarray(gallery_labels)
    target_labels = np.asarray(target_labels)
    if len(query_emb) != len(target_labels):
        raise ValueError("one target label per query expected")
    if len(query_emb) == 0:
        raise ValueError("no queries to evaluate")
    kmax = min(max(ks), len(gallery_emb))
    g = tf.math.l2_normalize(tf.constant(gallery_emb), axis=1)
    hits = {k: 0 for k in ks}
    for start in range(0, len(query_emb), batch_size):
        q = tf.math.l2_normalize(tf.constant(query_emb[start : start + batch_size]), axis=1)
        sims = tf.matmul(q, g, transpose_b=True)
        if source_ids is not None:
            src = tf.constant(np.asarray(source_ids[start : start + batch_size], np.int64))
            mask = tf.one_hot(src, depth=tf.shape(g)[0], on_value=True, off_value=False)
            sims = tf.where(mask, tf.constant(-np.inf, sims.dtype), sims)
        top = tf.math.top_k(sims, k=kmax).indices.numpy()
        match = gallery_labels[top] == target_labels[start : start + batch_size, None]
        for k in ks:
            hits[k] += int(np.any(match[:, :k], axis=1).sum())
    return {k: 100.0 * hits[k] / len(query_emb) for k in ks}


def top_k_gallery(query_emb: np.ndarray, gallery_emb: np.ndarray, k: int, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine similarities) of the k nearest gallery items to one query embedding."""
    q = np.asarray(query_emb, np.float32).reshape(1, -1)
    q = q / max(np.linalg.norm(q), 1e-12)
    g = np.asarray(gallery_emb, np.float32)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    sims = (g @ q.T)[:, 0]
    if exclude is not None:
        sims[exclude] = -np.inf
    order = np.argsort(-sims, kind="stable")[:k]
    return order, sims[order]

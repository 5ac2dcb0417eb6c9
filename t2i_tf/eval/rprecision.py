"""R-precision (Xu et al. 2018, AttnGAN; as DM-GAN's evaluation code computes it) from sentence and image features."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from t2i_tf.errors import UserError

__all__ = ["RPrecision", "fewest_other_class_captions", "r_precision", "r_precision_hits"]

# Gathered candidate features per chunk are kept below this many floats (~64 MB in float32).
_CHUNK_ELEMENTS = 16 * 1024 * 1024
# Norms are clamped here before dividing, as the reference code clamps with 1e-8.
_NORM_EPS = 1e-8


class RPrecision(NamedTuple):
    """R-precision mean and std over folds, and each fold's mean."""

    mean: float
    std: float
    fold_means: np.ndarray


def fewest_other_class_captions(class_ids: np.ndarray, pool_class_ids: np.ndarray | None = None) -> int:
    """The fewest captions of other classes in the pool (default: the captions themselves) over the classes of
    ``class_ids``: the most mismatched captions R-precision can draw for every image (0 for no images)."""
    cls = np.asarray(class_ids).reshape(-1)
    pool = cls if pool_class_ids is None else np.asarray(pool_class_ids).reshape(-1)
    if cls.size == 0:
        return 0
    return int(min(int(np.sum(pool != c)) for c in np.unique(cls)))


def _normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (norms clamped at 1e-8), float32."""
    x = x.astype(np.float32, copy=False)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, _NORM_EPS)


def _check_inputs(
    image_features: np.ndarray,
    caption_features: np.ndarray,
    class_ids: np.ndarray,
    pool_features: np.ndarray | None,
    pool_class_ids: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validates shapes and returns numpy arrays, with the pool defaulting to the captions."""
    img = np.asarray(image_features)
    cap = np.asarray(caption_features)
    cls = np.asarray(class_ids).reshape(-1)
    if img.ndim != 2 or cap.ndim != 2:
        raise UserError(
            f"r_precision: expected image and caption features of shape [N, D], got {img.shape} and {cap.shape}"
        )
    if img.shape != cap.shape:
        raise UserError(
            f"r_precision: image features {img.shape} and matching caption features {cap.shape} "
            "must have the same shape"
        )
    if cls.shape[0] != img.shape[0]:
        raise UserError(f"r_precision: expected {img.shape[0]} class ids, got {cls.shape[0]}")
    if (pool_features is None) != (pool_class_ids is None):
        raise UserError("r_precision: give both pool_features and pool_class_ids, or neither")
    if pool_features is None:
        pool, pool_cls = cap, cls
    else:
        pool = np.asarray(pool_features)
        pool_cls = np.asarray(pool_class_ids).reshape(-1)
        if pool.ndim != 2 or pool.shape[1] != img.shape[1]:
            raise UserError(
                f"r_precision: pool features must have shape [M, {img.shape[1]}], got {pool.shape}"
            )
        if pool_cls.shape[0] != pool.shape[0]:
            raise UserError(f"r_precision: expected {pool.shape[0]} pool class ids, got {pool_cls.shape[0]}")
    for name, arr in (("image features", img), ("caption features", cap), ("pool features", pool)):
        if not np.all(np.isfinite(arr)):
            raise UserError(f"r_precision: {name} contain NaN or Inf")
    return img, cap, cls, pool, pool_cls


def _sample_mismatched(
    cls: np.ndarray, pool_cls: np.ndarray, num_mismatched: int, rng: np.random.Generator
) -> np.ndarray:
    """[N, num_mismatched] pool indices, each drawn uniformly (with replacement) among captions of another class."""
    out = np.empty((cls.shape[0], num_mismatched), dtype=np.int64)
    for c in np.unique(cls):
        rows = np.flatnonzero(cls == c)
        others = np.flatnonzero(pool_cls != c)
        if others.size < num_mismatched:
            raise UserError(
                f"r_precision: class {c.item()!r} has only {others.size} candidate captions of other classes "
                "in the pool; "
                f"need at least num_mismatched={num_mismatched}"
            )
        out[rows] = others[rng.integers(0, others.size, size=(rows.size, num_mismatched))]
    return out


def r_precision_hits(
    image_features: np.ndarray,
    caption_features: np.ndarray,
    class_ids: np.ndarray,
    pool_features: np.ndarray | None = None,
    pool_class_ids: np.ndarray | None = None,
    num_mismatched: int = 99,
    seed: int = 0,
) -> np.ndarray:
    """Per image: does its own caption rank first (cosine) among itself + `num_mismatched` other-class captions?

    Ties go to the own caption, as with argmax over [own, mismatched...].
    """
    if num_mismatched < 1:
        raise UserError(f"r_precision: num_mismatched must be >= 1, got {num_mismatched}")
    img, cap, cls, pool, pool_cls = _check_inputs(
        image_features, caption_features, class_ids, pool_features, pool_class_ids
    )
    rng = np.random.default_rng(seed)
    mismatched = _sample_mismatched(cls, pool_cls, num_mismatched, rng)
    img_n, cap_n, pool_n = _normalize(img), _normalize(cap), _normalize(pool)
    n, dim = img_n.shape
    chunk = max(1, _CHUNK_ELEMENTS // ((num_mismatched + 1) * max(dim, 1)))
    hits = np.empty(n, dtype=bool)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        candidates = np.concatenate([cap_n[start:stop, None, :], pool_n[mismatched[start:stop]]], axis=1)
        scores = np.einsum("nd,nkd->nk", img_n[start:stop], candidates)
        hits[start:stop] = np.argmax(scores, axis=1) == 0
    return hits


def r_precision(
    image_features: np.ndarray,
    caption_features: np.ndarray,
    class_ids: np.ndarray,
    pool_features: np.ndarray | None = None,
    pool_class_ids: np.ndarray | None = None,
    num_mismatched: int = 99,
    folds: int = 10,
    seed: int = 0,
) -> RPrecision:
    """R-precision (R=1) over N generated images, as mean and std of the hit rate over `folds` random folds.

    image_features / caption_features: [N, D] global image and sentence features
    (e.g. DAMSM) of each generated image and the caption it was generated from;
    class_ids: [N]; pool_features / pool_class_ids: captions to draw mismatches
    from (default: the N captions themselves). Hits are shuffled with the seeded
    RNG and cut into `folds` near-equal folds; std is numpy's (ddof=0).
    """
    if not isinstance(folds, (int, np.integer)) or folds < 1:
        raise UserError(f"r_precision: folds must be a positive integer, got {folds!r}")
    hits = r_precision_hits(
        image_features, caption_features, class_ids, pool_features, pool_class_ids, num_mismatched, seed
    )
    if hits.shape[0] < folds:
        raise UserError(f"r_precision: need at least folds={folds} images, got {hits.shape[0]}")
    rng = np.random.default_rng([seed, 1])
    shuffled = hits[rng.permutation(hits.shape[0])].astype(np.float64)
    fold_means = np.array([part.mean() for part in np.array_split(shuffled, folds)])
    return RPrecision(float(fold_means.mean()), float(fold_means.std()), fold_means)

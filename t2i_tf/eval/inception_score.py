"""Inception Score (Salimans et al. 2016) from class probabilities or logits, as OpenAI's improved-GAN code."""

from __future__ import annotations

import numpy as np

from t2i_tf.errors import UserError

__all__ = ["inception_score"]

# Rows of `probs` may deviate this much from summing to 1 (float32 softmax round-off).
_SUM_TOL = 1e-3


def _log_probs(values: np.ndarray, from_logits: bool) -> np.ndarray:
    """Row-wise log p(y|x) in float64, from logits (stable log-softmax) or probabilities."""
    if from_logits:
        shifted = values - values.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    if values.min() < 0:
        raise UserError(
            "inception_score: probabilities must be >= 0 (pass from_logits=True for logits)"
        )
    sums = values.sum(axis=1)
    if np.max(np.abs(sums - 1.0)) > _SUM_TOL:
        raise UserError(
            "inception_score: each row of probabilities must sum to 1, "
            f"got row sums in [{sums.min():.4g}, {sums.max():.4g}] (pass from_logits=True for logits)"
        )
    with np.errstate(divide="ignore"):
        return np.log(values)


def inception_score(
    probs_or_logits: np.ndarray, splits: int = 10, from_logits: bool = False
) -> tuple[float, float]:
    """Mean and std over `splits` consecutive splits of exp(E_x KL(p(y|x) || p(y))).

    Matches OpenAI's improved-GAN `get_inception_score`: the N predictions are cut
    in order into `splits` parts (part i = rows [i*N//splits, (i+1)*N//splits)),
    p(y) is the mean prediction of the part, and the std is numpy's (ddof=0).
    Terms with p(y|x) = 0 contribute 0 (OpenAI's code would give NaN there).
    """
    values = np.asarray(probs_or_logits)
    if values.ndim != 2 or values.shape[1] < 2:
        raise UserError(
            f"inception_score: expected [N, num_classes] predictions, got shape {values.shape}"
        )
    if not isinstance(splits, (int, np.integer)) or splits < 1:
        raise UserError(f"inception_score: splits must be a positive integer, got {splits!r}")
    n = values.shape[0]
    if n < splits:
        raise UserError(f"inception_score: need at least splits={splits} predictions, got {n}")
    values = values.astype(np.float64, copy=False)
    if not np.all(np.isfinite(values)):
        raise UserError("inception_score: predictions contain NaN or Inf")
    log_p = _log_probs(values, from_logits)
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        part_p = p[i * n // splits : (i + 1) * n // splits]
        part_log_p = log_p[i * n // splits : (i + 1) * n // splits]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_py = np.log(part_p.mean(axis=0, keepdims=True))
            terms = np.where(part_p > 0, part_p * (part_log_p - log_py), 0.0)
        scores.append(np.exp(terms.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))

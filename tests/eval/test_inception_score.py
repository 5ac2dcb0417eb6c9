"""Tests for t2i_tf.eval.inception_score."""

import numpy as np
import pytest

from t2i_tf.errors import UserError
from t2i_tf.eval.inception_score import inception_score


def _entropy(p: np.ndarray) -> np.ndarray:
    """Row entropies in nats (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)


def test_confident_uniform_one_hot_predictions_give_k():
    k = 10
    probs = np.eye(k)[np.arange(1000) % k]  # each split of 100 holds every class 10 times
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(k, abs=1e-3)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_confident_logits_give_k():
    k = 7
    logits = 40.0 * np.eye(k)[np.arange(700) % k]
    mean, _ = inception_score(logits, splits=10, from_logits=True)
    assert mean == pytest.approx(k, abs=1e-3)


def test_identical_predictions_give_one():
    p = np.random.default_rng(0).dirichlet(np.ones(1008))
    mean, std = inception_score(np.tile(p, (50, 1)), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_matches_entropy_form_per_split_and_logits_agree_with_probs():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(103, 20))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    splits = 4
    n = len(probs)
    # IS of a split = exp(H(p(y)) - E_x H(p(y|x))); OpenAI's split boundaries i*N//splits.
    expected = [
        np.exp(_entropy(part.mean(0)) - _entropy(part).mean())
        for part in (probs[i * n // splits : (i + 1) * n // splits] for i in range(splits))
    ]
    mean, std = inception_score(probs, splits=splits)
    assert mean == pytest.approx(np.mean(expected), rel=1e-10)
    assert std == pytest.approx(np.std(expected), rel=1e-8)
    mean_l, std_l = inception_score(logits, splits=splits, from_logits=True)
    assert mean_l == pytest.approx(mean, rel=1e-10)
    assert std_l == pytest.approx(std, rel=1e-8)


def test_bad_inputs_raise():
    with pytest.raises(UserError, match="sum to 1"):
        inception_score(np.full((20, 4), 0.5), splits=2)
    with pytest.raises(UserError, match=">= 0"):
        inception_score(np.array([[1.5, -0.5]] * 4), splits=2)
    with pytest.raises(UserError, match="at least splits=10"):
        inception_score(np.eye(3), splits=10)
    with pytest.raises(UserError, match=r"\[N, num_classes\]"):
        inception_score(np.ones(10), splits=1)

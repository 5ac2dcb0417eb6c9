"""Tests for t2i_tf.eval.rprecision."""

import numpy as np
import pytest

from t2i_tf.errors import UserError
from t2i_tf.eval.rprecision import r_precision, r_precision_hits


def test_perfect_encoder_gives_one_with_zero_std():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(300, 16))
    classes = np.arange(300)  # all distinct
    result = r_precision(feats, feats, classes, folds=10, seed=3)
    assert result.mean == 1.0
    assert result.std == 0.0
    assert len(result.fold_means) == 10


def test_random_features_give_about_one_in_a_hundred():
    rng = np.random.default_rng(1)
    n = 5000
    img, cap = rng.normal(size=(n, 32)), rng.normal(size=(n, 32))
    classes = rng.integers(0, 50, size=n)
    result = r_precision(img, cap, classes, folds=10, seed=7)
    # Binomial(5000, 0.01): std of the mean is 0.0014; 0.006 is over 4 sigma.
    assert result.mean == pytest.approx(0.01, abs=0.006)
    assert result.std > 0
    assert result.std == pytest.approx(np.std(result.fold_means))
    assert result.mean == pytest.approx(np.mean(result.fold_means))


def test_only_captions_of_other_classes_are_drawn():
    rng = np.random.default_rng(2)
    n = 400
    classes = np.arange(n) % 20
    img = rng.normal(size=(n, 24))
    cap = img + 0.05 * rng.normal(size=img.shape)  # close to the image, but not identical
    # Pool: for every image, a same-class decoy equal to the image itself (cosine 1), plus random other captions.
    pool = np.concatenate([img, rng.normal(size=(2000, 24))])
    pool_classes = np.concatenate([classes, rng.integers(0, 20, size=2000)])
    result = r_precision(img, cap, classes, pool, pool_classes, seed=0)
    assert result.mean == 1.0
    # If same-class decoys were eligible, they would beat the own caption.
    hits = r_precision_hits(img, cap, classes, pool, np.full_like(pool_classes, -1), seed=0)
    assert hits.mean() < 1.0


def test_seed_makes_it_reproducible_and_changes_the_draw():
    rng = np.random.default_rng(3)
    img, cap = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
    classes = rng.integers(0, 10, size=500)
    a = r_precision_hits(img, cap, classes, seed=11)
    b = r_precision_hits(img, cap, classes, seed=11)
    c = r_precision_hits(img, cap, classes, seed=12)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_matches_a_per_image_reference():
    rng = np.random.default_rng(4)
    n, d = 60, 6
    img, cap = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.8 * rng.normal(size=(n, d))
    cap = 0.5 * img + cap
    classes = rng.integers(0, 6, size=n)
    hits = r_precision_hits(img, cap, classes, num_mismatched=9, seed=5)
    # Reference: re-draw the same indices (same RNG stream, class by class) and rank per image.
    draw = np.random.default_rng(5)
    idx = np.empty((n, 9), dtype=np.int64)
    for c in np.unique(classes):
        rows, others = np.flatnonzero(classes == c), np.flatnonzero(classes != c)
        idx[rows] = others[draw.integers(0, others.size, size=(rows.size, 9))]
    for i in range(n):
        cands = np.vstack([cap[i], cap[idx[i]]])
        cos = cands @ img[i] / (np.linalg.norm(cands, axis=1) * np.linalg.norm(img[i]))
        assert hits[i] == (np.argmax(cos) == 0)
        assert np.all(classes[idx[i]] != classes[i])


def test_too_few_mismatched_captions_raise():
    feats = np.random.default_rng(5).normal(size=(50, 4))
    classes = np.zeros(50, dtype=int)
    classes[:10] = 1
    with pytest.raises(UserError, match="class 0 has only 10 candidate captions"):
        r_precision(feats, feats, classes, num_mismatched=99, folds=5)


def test_shape_errors_raise():
    feats = np.zeros((20, 4))
    with pytest.raises(UserError, match="same shape"):
        r_precision(feats, np.zeros((20, 5)), np.arange(20), num_mismatched=5)
    with pytest.raises(UserError, match="class ids"):
        r_precision(feats, feats, np.arange(19), num_mismatched=5)
    with pytest.raises(UserError, match="folds=30"):
        r_precision(feats, feats, np.arange(20), num_mismatched=5, folds=30)

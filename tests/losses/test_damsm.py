"""DAMSM losses against hand computations and a loop version of the reference algorithm."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.losses.damsm import (
    damsm_loss,
    retrieval_accuracy,
    sentence_loss,
    word_region_attention,
    words_loss,
)
from tests.conftest import REPO_ROOT


def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def _loop_attention(word_vecs, region_vecs, gamma1):
    """Reference func_attention for one (caption, image) pair, real words only: [T, D], [P, D]."""
    scores = region_vecs @ word_vecs.T  # [P, T]
    over_words = np.stack([_softmax(row) for row in scores])  # each region: softmax over words
    attn = np.stack([_softmax(gamma1 * col) for col in over_words.T])  # each word: softmax over regions
    return attn @ region_vecs, attn


def _loop_words_loss(regions, words, lengths, class_ids, gamma1, gamma2, gamma3, relevance):
    """The reference words_loss written as plain loops; per-example loss0 + loss1."""
    n = len(words)
    regions = regions.reshape(n, -1, regions.shape[-1])
    sim = np.zeros((n, n))  # sim[j, i]: image j vs caption i, as the reference's `similarities`
    for i in range(n):
        w = words[i, : lengths[i]]
        for j in range(n):
            ctx, _ = _loop_attention(w, regions[j], gamma1)
            cos = np.sum(w * ctx, -1) / (np.linalg.norm(w, axis=-1) * np.linalg.norm(ctx, axis=-1))
            r = np.log(np.sum(np.exp(gamma2 * cos)))
            sim[j, i] = r / gamma2 if relevance == "paper" else r
    logits = gamma3 * sim
    if class_ids is not None:
        for i in range(n):
            for j in range(n):
                if i != j and class_ids[i] == class_ids[j]:
                    logits[i, j] = -np.inf
    loss = np.zeros(n)
    for k in range(n):
        loss[k] -= np.log(_softmax(logits[k])[k])  # image k: CE over captions (loss0)
        loss[k] -= np.log(_softmax(logits[:, k])[k])  # caption k: CE over images (loss1)
    return loss


def _random_batch(n=4, t=5, r=3, d=6, seed=0):
    rng = np.random.default_rng(seed)
    regions = rng.normal(size=(n, r, r, d)).astype(np.float32)
    words = rng.normal(size=(n, t, d)).astype(np.float32)
    lengths = rng.integers(2, t + 1, size=n)
    lengths[0] = t
    mask = np.arange(t)[None, :] < lengths[:, None]
    words = words * mask[:, :, None]
    return regions, words, mask, lengths


def test_attention_matches_reference_loop_and_rows_sum_to_one():
    regions, words, mask, lengths = _random_batch()
    # padding slots hold garbage: they must not take part in the softmax over words
    words_garbage = words + (~mask)[:, :, None] * 3.0
    ctx, attn = word_region_attention(tf.constant(words_garbage), tf.constant(regions), tf.constant(mask), gamma1=4.0)
    assert ctx.shape == (4, 5, 6) and attn.shape == (4, 5, 9)
    ctx, attn = ctx.numpy(), attn.numpy()
    for n in range(4):
        L = lengths[n]
        want_ctx, want_attn = _loop_attention(words[n, :L], regions[n].reshape(9, 6), 4.0)
        np.testing.assert_allclose(attn[n, :L], want_attn, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ctx[n, :L], want_ctx, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(attn[n, :L].sum(-1), 1.0, rtol=1e-6)
        assert np.all(attn[n, L:] == 0) and np.all(ctx[n, L:] == 0)


def test_attention_normalises_over_words_first():
    """Hand-computed: with orthogonal features the softmax over words is (nearly) one-hot for regions
    showing a word and uniform for empty regions, so word t weighs its region exp(g1) and an empty
    region exp(g1 / T): the order of the two softmaxes is visible in the values."""
    d = 8
    eye = np.eye(d, dtype=np.float32) * 10.0
    words = np.stack([eye[0], eye[1], eye[2]])[None]  # one caption, T = 3 real words
    regions = np.stack([eye[0], eye[1], eye[2], eye[5]]).reshape(1, 2, 2, d)  # region 3 shows no word
    mask = np.ones((1, 3), bool)
    for g1 in (4.0, 50.0):
        _, attn = word_region_attention(tf.constant(words), tf.constant(regions), tf.constant(mask), gamma1=g1)
        unnorm = np.array([np.exp(g1), 1.0, 1.0, np.exp(g1 / 3)])
        want0 = unnorm / unnorm.sum()
        np.testing.assert_allclose(attn.numpy()[0, 0], want0, rtol=1e-5)
    # with a sharp gamma1 the other words' regions get ~0 weight
    assert np.all(attn.numpy()[0, 0, 1:] < 1e-6)


@pytest.mark.parametrize("relevance", ["paper", "code"])
@pytest.mark.parametrize("use_classes", [False, True])
def test_words_loss_matches_reference_loop(relevance, use_classes):
    regions, words, mask, lengths = _random_batch(seed=1)
    regions, words = regions * 0.5, words * 0.5
    class_ids = np.array([3, 1, 3, 2]) if use_classes else None
    got, attn = words_loss(
        tf.constant(regions), tf.constant(words), tf.constant(mask),
        None if class_ids is None else tf.constant(class_ids), relevance=relevance,
    )
    want = _loop_words_loss(regions, words, lengths, class_ids, 4.0, 5.0, 10.0, relevance)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)
    assert attn.shape == (4, 5, 3, 3)
    np.testing.assert_allclose(attn.numpy().reshape(4, 5, 9).sum(-1), mask.astype(np.float32), rtol=1e-5, atol=1e-6)


def _matched_features(n=4, t=3, d=32, seed=0):
    """Image j's regions show caption j's word vectors (orthonormal) plus one unrelated region."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0].T.astype(np.float32)  # orthonormal rows
    words = basis[: n * t].reshape(n, t, d)
    extra = basis[n * t : n * t + n][:, None]
    regions = np.concatenate([words, extra], axis=1).reshape(n, 2, 2, d)
    return 5.0 * regions, words, np.ones((n, t), bool)


def test_words_loss_small_for_matching_pairs_and_large_for_shuffled():
    regions, words, mask = _matched_features()
    matched, _ = words_loss(tf.constant(regions), tf.constant(words), tf.constant(mask), None)
    shuffled, _ = words_loss(tf.constant(regions[[1, 2, 3, 0]]), tf.constant(words), tf.constant(mask), None)
    assert np.all(matched.numpy() < 0.1), matched
    assert np.all(shuffled.numpy() > 5.0), shuffled


def test_words_loss_ignores_padding():
    regions, words, mask = _matched_features()
    base, _ = words_loss(tf.constant(regions), tf.constant(words), tf.constant(mask), None)
    pad = np.ones((4, 2, words.shape[-1]), np.float32)  # garbage in the padding slots
    padded_words = np.concatenate([words, pad], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((4, 2), bool)], axis=1)
    padded, _ = words_loss(tf.constant(regions), tf.constant(padded_words), tf.constant(padded_mask), None)
    np.testing.assert_allclose(padded.numpy(), base.numpy(), rtol=1e-5, atol=1e-6)


def test_same_class_negative_is_masked():
    regions, words, mask, _ = _random_batch(seed=2)
    img = np.random.default_rng(3).normal(size=(4, 6)).astype(np.float32)
    sent = np.random.default_rng(4).normal(size=(4, 6)).astype(np.float32)
    classes = tf.constant([7, 7, 1, 2])
    # example 1 (same class as example 0) moves towards example 0's features
    regions2, words2, img2, sent2 = regions.copy(), words.copy(), img.copy(), sent.copy()
    regions2[1], words2[1], img2[1], sent2[1] = regions[0], words[0], img[0], sent[0]

    def losses(r, w, i, s, ids):
        out = damsm_loss(tf.constant(r), tf.constant(i), tf.constant(w), tf.constant(s), tf.constant(mask), ids)
        return out["words"].numpy(), out["sentence"].numpy()

    w_a, s_a = losses(regions, words, img, sent, classes)
    w_b, s_b = losses(regions2, words2, img2, sent2, classes)
    # example 0 ignores its same-class example 1 (2 and 3 see it as a negative, so theirs change)
    np.testing.assert_allclose(w_b[0], w_a[0], rtol=1e-5)
    np.testing.assert_allclose(s_b[0], s_a[0], rtol=1e-5)
    # without class ids example 1 is a negative of 0 and the change shows
    w_c, s_c = losses(regions, words, img, sent, None)
    w_d, s_d = losses(regions2, words2, img2, sent2, None)
    assert abs(w_d[0] - w_c[0]) > 1e-2 and abs(s_d[0] - s_c[0]) > 1e-2


def test_sentence_loss_hand_computed_3x3():
    img = np.eye(3, dtype=np.float32) * [2.0, 1.0, 3.0]  # norms must not matter
    sent = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 4]], np.float32)
    r = 1 / math.sqrt(2)
    # cos[i, j]: sentence i vs image j
    # sentence 0: (1, 0, 0); sentence 1: (r, r, 0); sentence 2: (0, 0, 1)
    def ce(logits, k):
        return -math.log(math.exp(logits[k]) / sum(math.exp(x) for x in logits))

    want = [
        ce([10, 0, 0], 0) + ce([10, 10 * r, 0], 0),  # sentence 0 over images; image 0 over sentences
        ce([10 * r, 10 * r, 0], 1) + ce([0, 10 * r, 0], 1),
        ce([0, 0, 10], 2) + ce([0, 0, 10], 2),
    ]
    got = sentence_loss(tf.constant(img), tf.constant(sent), None).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # classes [0, 0, 1]: pairs (0, 1) and (1, 0) are dropped as negatives
    want_masked = [
        ce([10, 0], 0) + ce([10, 0], 0),
        ce([10 * r, 0], 0) + ce([10 * r, 0], 0),
        want[2],
    ]
    got_masked = sentence_loss(tf.constant(img), tf.constant(sent), tf.constant([0, 0, 1])).numpy()
    np.testing.assert_allclose(got_masked, want_masked, rtol=1e-5, atol=1e-6)


def test_damsm_loss_total_and_retrieval_accuracy():
    regions, words, mask = _matched_features()
    img = words.sum(1)
    out = damsm_loss(tf.constant(regions), tf.constant(img), tf.constant(words), tf.constant(img), tf.constant(mask), None)
    assert set(out) == {"words", "sentence", "total"}
    assert all(v.shape == (4,) for v in out.values())
    np.testing.assert_allclose(out["total"].numpy(), out["words"].numpy() + out["sentence"].numpy(), rtol=1e-6)
    assert float(retrieval_accuracy(tf.constant(img), tf.constant(img))) == 1.0
    assert float(retrieval_accuracy(tf.constant(img[[1, 2, 3, 0]]), tf.constant(img))) == 0.0


# Run in a fresh process: logical CPUs must be configured before TensorFlow initialises.
_DISTRIBUTED_SCRIPT = r"""
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from t2i_tf.losses.damsm import damsm_loss

rng = np.random.default_rng(0)
n, t, r, d = 8, 5, 3, 6
data = {
    "regions": rng.normal(size=(n, r, r, d)).astype(np.float32) * 0.5,
    "words": rng.normal(size=(n, t, d)).astype(np.float32) * 0.5,
    "img": rng.normal(size=(n, d)).astype(np.float32),
    "sent": rng.normal(size=(n, d)).astype(np.float32),
}
lengths = np.array([5, 3, 4, 2, 5, 5, 3, 4])
mask = np.arange(t)[None, :] < lengths[:, None]
data["words"] *= mask[:, :, None]
classes = np.array([0, 1, 2, 3, 0, 5, 1, 7], np.int64)  # same-class pairs across the replica split


def step(b):
    inputs = [b["regions"], b["words"], b["img"], b["sent"]]
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        out = damsm_loss(b["regions"], b["img"], b["words"], b["sent"], b["mask"], b["classes"])
        loss = tf.nn.compute_average_loss(out["total"], global_batch_size=n)
    grads = tape.gradient(loss, inputs)
    return out["words"], out["sentence"], grads


batch = {k: tf.constant(v) for k, v in data.items()}
batch["mask"] = tf.constant(mask)
batch["classes"] = tf.constant(classes)
single = tf.function(step)(batch)

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
dist = strategy.experimental_distribute_values_from_function(
    lambda ctx: {k: v[4 * ctx.replica_id_in_sync_group : 4 * (ctx.replica_id_in_sync_group + 1)] for k, v in batch.items()}
)
mirrored = tf.function(lambda b: strategy.run(step, args=(b,)))(dist)
cat = lambda x: np.concatenate([v.numpy() for v in strategy.experimental_local_results(x)])
mw, ms, mg = cat(mirrored[0]), cat(mirrored[1]), [cat(g) for g in mirrored[2]]

# Each half alone (no all-gather): what a wrong implementation would give.
halves = [tf.function(step)({k: v[4 * i : 4 * (i + 1)] for k, v in batch.items()}) for i in range(2)]
local_w = np.concatenate([h[0].numpy() for h in halves])

print("RESULT " + json.dumps({
    "words_diff": float(np.max(np.abs(mw - single[0].numpy()))),
    "sentence_diff": float(np.max(np.abs(ms - single[1].numpy()))),
    "grad_diff": max(float(np.max(np.abs(a - b.numpy()))) for a, b in zip(mg, single[2])),
    "grad_scale": max(float(np.max(np.abs(b.numpy()))) for b in single[2]),
    "loss_scale": float(np.min(single[0].numpy())),
    "local_only_diff": float(np.max(np.abs(local_w - single[0].numpy()))),
}))
"""


def test_mirrored_two_replicas_equal_single_device():
    proc = subprocess.run(
        [sys.executable, "-c", _DISTRIBUTED_SCRIPT],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stdout + proc.stderr[-2000:]
    res = json.loads(line[-1][len("RESULT "):])
    assert res["loss_scale"] > 0.1 and res["grad_scale"] > 1e-3  # non-trivial values
    assert res["local_only_diff"] > 1e-2  # the global batch really differs from per-replica batches
    assert res["words_diff"] < 1e-4 and res["sentence_diff"] < 1e-4, res
    assert res["grad_diff"] < 1e-5 + 1e-4 * res["grad_scale"], res


def _loop_relevance(w, region_vecs, gamma1, gamma2, relevance):
    ctx, _ = _loop_attention(w, region_vecs, gamma1)
    cos = np.sum(w * ctx, -1) / (np.linalg.norm(w, axis=-1) * np.linalg.norm(ctx, axis=-1))
    r = np.log(np.sum(np.exp(gamma2 * cos)))
    return r / gamma2 if relevance == "paper" else r


@pytest.mark.parametrize("relevance", ["paper", "code"])
def test_hard_negative_captions_join_only_their_own_images_softmax(relevance):
    """Image k's CE over captions also runs over its valid hard negatives (loop reference); captions' CE unchanged."""
    g1, g2, g3 = 4.0, 5.0, 10.0
    regions, words, mask, lengths = _random_batch()
    n, t, d = words.shape
    rng = np.random.default_rng(7)
    k_neg = 2
    neg_words = rng.normal(size=(n, k_neg, t, d)).astype(np.float32)
    neg_len = rng.integers(2, t + 1, size=(n, k_neg))
    neg_mask = np.arange(t)[None, None, :] < neg_len[:, :, None]
    neg_words = neg_words * neg_mask[..., None]
    valid = np.array([[True, True], [True, False], [False, False], [True, True]])
    got, _ = words_loss(tf.constant(regions), tf.constant(words), tf.constant(mask), None, g1, g2, g3, relevance,
                        tf.constant(neg_words), tf.constant(neg_mask), tf.constant(valid))
    flat = regions.reshape(n, -1, d)
    sim = np.array([[_loop_relevance(words[i, :lengths[i]], flat[j], g1, g2, relevance) for i in range(n)]
                    for j in range(n)])  # sim[j, i]: image j vs caption i
    want = np.zeros(n)
    for k in range(n):
        extra = [_loop_relevance(neg_words[k, m, :neg_len[k, m]], flat[k], g1, g2, relevance)
                 for m in range(k_neg) if valid[k, m]]
        row = g3 * np.concatenate([sim[k], extra])
        want[k] = -np.log(_softmax(row)[k]) - np.log(_softmax(g3 * sim[:, k])[k])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4)
    plain, _ = words_loss(tf.constant(regions), tf.constant(words), tf.constant(mask), None, g1, g2, g3, relevance)
    assert got.numpy()[2] == pytest.approx(plain.numpy()[2], rel=1e-6)  # no valid negative: unchanged
    assert np.all(got.numpy()[[0, 1, 3]] > plain.numpy()[[0, 1, 3]])


def test_sentence_loss_hard_negatives_direct_computation():
    rng = np.random.default_rng(3)
    v, s = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    neg = rng.normal(size=(3, 2, 5))
    valid = np.array([[True, False], [True, True], [False, False]])
    got = sentence_loss(tf.constant(v, tf.float32), tf.constant(s, tf.float32), None, 10.0,
                        tf.constant(neg, tf.float32), tf.constant(valid)).numpy()
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    cos = unit(v) @ unit(s).T  # [image, caption]
    want = []
    for i in range(3):
        extra = [float(unit(v[i]) @ unit(neg[i, m])) for m in range(2) if valid[i, m]]
        row = 10.0 * np.concatenate([cos[i], extra])
        want.append(-np.log(_softmax(row)[i]) - np.log(_softmax(10.0 * cos[:, i])[i]))
    np.testing.assert_allclose(got, want, rtol=1e-5)

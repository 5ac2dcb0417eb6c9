"""AttnGAN's DAMSM losses (Xu et al. CVPR 2018, Sec. 3.3): how well images and captions match.

- :func:`word_region_attention`: each word attends over the image's regions (the reference's
  ``func_attention``).
- :func:`words_loss`: word-level matching: a caption's relevance to an image aggregates, over its
  words, the cosine between each word and its attended region context (Eq. 9-10); symmetric
  in-batch softmax over images and over captions (Eq. 11-13).
- :func:`sentence_loss`: the same softmax on cosines of the global image and sentence features.
- :func:`damsm_loss`: both, per example. :func:`retrieval_accuracy`: a top-1 matching metric.

Defaults are the reference's (taoxugit/AttnGAN ``code/cfg/DAMSM/bird.yml``): gamma1 = 4 (attention
sharpness over regions), gamma2 = 5 (word -> caption aggregation), gamma3 = 10 (softmax smoothing over
the batch). DAMSM pre-training minimises ``words + sentence`` (weight 1); the AttnGAN generator adds
``LAMBDA * (words + sentence)`` computed on its final image (LAMBDA 5 for birds in bird_attn2.yml).

All per-example losses are "loss0 + loss1" of the reference (CE over images for the caption plus CE
over captions for the image) for each example; their mean over the batch is the reference's value.
Candidates are the whole *global* batch (all-gathered over replicas with
:func:`t2i_tf.distribute.gather_global`), so a MirroredStrategy step equals a single-device step;
reduce with ``tf.nn.compute_average_loss(..., global_batch_size=...)``. Negatives from the same class
as the positive (``class_ids``) are masked out, as in the reference.

Optional *hard negatives* (not in the reference): K extra captions per example (its own caption with one word
swapped, t2i_tf/data/word_swaps.py) join the candidates of the image -> caption softmax of that example only.
"""

from __future__ import annotations

import tensorflow as tf

from t2i_tf.distribute import gather_global

# Masked logits: exp() underflows to exactly 0 and, unlike -inf, 0 * NEG stays finite in gradients.
_NEG = -1e9
RELEVANCE_MODES = ("paper", "code")


def _flatten_regions(regions: tf.Tensor) -> tf.Tensor:
    """[N, R, R, D] (or already [N, P, D]) -> float32 [N, P, D]."""
    regions = tf.cast(regions, tf.float32)
    if regions.shape.rank == 4:
        shape = tf.shape(regions)
        regions = tf.reshape(regions, [shape[0], shape[1] * shape[2], shape[3]])
    return regions


def _attend(words: tf.Tensor, regions: tf.Tensor, word_mask: tf.Tensor, gamma1: float):
    """Core attention on broadcastable batch dims: words [..., T, D], regions [..., P, D], mask [..., T].

    Returns (context [..., T, D], attention [..., T, P]); rows of padding words are zero.
    """
    scores = tf.matmul(words, regions, transpose_b=True)  # [..., T, P]
    m = word_mask[..., :, None]
    # The reference (GlobalAttention.func_attention, Eq. 8) first normalises over the caption's words
    # for each region, then sharpens by gamma1 and normalises over regions (Eq. 9).
    over_words = tf.nn.softmax(tf.where(m, scores, _NEG), axis=-2)
    attention = tf.nn.softmax(gamma1 * over_words, axis=-1) * tf.cast(m, scores.dtype)
    context = tf.matmul(attention, regions)  # [..., T, D]
    return context, attention


def word_region_attention(
    words: tf.Tensor, regions: tf.Tensor, word_mask: tf.Tensor, gamma1: float = 4.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Region context of every word of caption n in image n: (context [N, T, D], attention [N, T, R*R]).

    As the reference's ``func_attention``: s = e_t . v_r; first a softmax over the caption's *real
    words* for each region r, then gamma1 times that, then a softmax over the regions for each word
    (so each real word's attention row sums to 1 over regions); context c_t = sum_r a_tr v_r.
    Padding words (``word_mask`` False) take no part and get all-zero attention and context.
    """
    words = tf.cast(words, tf.float32)
    return _attend(words, _flatten_regions(regions), tf.cast(word_mask, tf.bool), gamma1)


def _pair_relevance(words, word_mask, regions, gamma1, gamma2, relevance):
    """Relevance of every caption a (words [A, T, D]) to every image b (regions [B, P, D]).

    Returns (R [A, B], attention [A, B, T, P]).
    """
    context, attention = _attend(words[:, None], regions[None], word_mask[:, None], gamma1)  # [A, B, T, *]
    cos = tf.reduce_sum(tf.math.l2_normalize(words[:, None], axis=-1) * tf.math.l2_normalize(context, axis=-1), -1)
    return _relevance(cos, word_mask[:, None, :], gamma2, relevance), attention


def _relevance(cos, m, gamma2, relevance):
    """Caption-image relevance from its words' cosines [..., T] (mask m [..., T])."""
    rel = tf.reduce_logsumexp(tf.where(m, gamma2 * cos, _NEG), axis=-1)  # log sum_t exp(gamma2 cos_t)
    if relevance == "paper":
        rel = rel / gamma2
    # A caption with no real word has no evidence either way.
    return tf.where(tf.reduce_any(m, axis=-1), rel, 0.0)


def _negatives_to_drop(local_ids, all_ids, labels):
    """Bool [n, M]: candidate j has the same class as example i but is not i's own pair."""
    same = tf.equal(local_ids[:, None], all_ids[None, :])
    own = tf.equal(labels[:, None], tf.range(tf.shape(all_ids)[0])[None, :])
    return tf.logical_and(same, tf.logical_not(own))


def _symmetric_ce(text_logits, image_logits, labels, class_ids, extra_image_logits=None, extra_valid=None):
    """CE(caption -> its image) + CE(image -> its caption) per local example, same-class masked.

    text_logits[i, j]: local caption i vs global image j; image_logits[i, j]: local image i vs global
    caption j; extra_image_logits[i, k]: local image i vs its k-th hard negative caption (used where
    ``extra_valid`` [i, k] is True).
    """
    if class_ids is not None:
        local_ids = tf.cast(class_ids, tf.int32)
        all_ids, _ = gather_global(local_ids)
        drop = _negatives_to_drop(local_ids, all_ids, labels)
        text_logits = tf.where(drop, _NEG, text_logits)
        image_logits = tf.where(drop, _NEG, image_logits)
    if extra_image_logits is not None:
        extra = extra_image_logits if extra_valid is None else tf.where(extra_valid, extra_image_logits, _NEG)
        image_logits = tf.concat([image_logits, extra], axis=1)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits
    return ce(labels=labels, logits=text_logits) + ce(labels=labels, logits=image_logits)


def words_loss(
    regions: tf.Tensor,
    words: tf.Tensor,
    word_mask: tf.Tensor,
    class_ids: tf.Tensor | None,
    gamma1: float = 4.0,
    gamma2: float = 5.0,
    gamma3: float = 10.0,
    relevance: str = "paper",
    negative_words: tf.Tensor | None = None,
    negative_mask: tf.Tensor | None = None,
    negative_valid: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """DAMSM word-level loss: (per_example [N], attention [N, T, R, R] of each caption on its own image).

    regions [N, R, R, D] (image encoder), words [N, T, D] (text encoder), word_mask [N, T] bool,
    class_ids [N] int or None. For caption i and image j: c_t = region context of word t in image j
    (:func:`word_region_attention`), and the relevance over caption i's real words is

    - ``relevance="paper"`` (Eq. 10 as published): R = log( (sum_t exp(gamma2 cos(c_t, e_t)))^(1/gamma2) );
    - ``relevance="code"``: log sum_t exp(gamma2 cos(c_t, e_t)) without the 1/gamma2 exponent, as the
      reference ``words_loss`` computes it (logits gamma2 times sharper; what the published DAMSM
      encoders were trained with).

    Logits gamma3 * R over the global batch; loss = CE over images for caption i + CE over captions
    for image i. Padding words are ignored. With ``negative_words`` [N, K, T, D] (+ their word masks [N, K, T] and
    ``negative_valid`` [N, K]) image i also weighs its K hard negative captions.
    """
    if relevance not in RELEVANCE_MODES:
        raise ValueError(f"relevance must be one of {RELEVANCE_MODES}; got {relevance!r}")
    if regions.shape.rank != 4:
        raise ValueError(f"words_loss wants regions [N, R, R, D]; got shape {regions.shape}")
    r = tf.shape(regions)[1]
    regions = _flatten_regions(regions)
    words = tf.cast(words, tf.float32)
    word_mask = tf.cast(word_mask, tf.bool)
    all_regions, offset = gather_global(regions)
    all_words, _ = gather_global(words)
    all_mask, _ = gather_global(tf.cast(word_mask, tf.int32))
    all_mask = tf.cast(all_mask, tf.bool)
    labels = offset + tf.range(tf.shape(words)[0])

    text_rel, attention = _pair_relevance(words, word_mask, all_regions, gamma1, gamma2, relevance)  # [n, M]
    if all_regions is regions and all_words is words:  # one replica: the matrix is square, reuse it
        image_rel = tf.transpose(text_rel)
    else:
        image_rel = tf.transpose(_pair_relevance(all_words, all_mask, regions, gamma1, gamma2, relevance)[0])
    extra = None
    if negative_words is not None:
        nw = tf.cast(negative_words, tf.float32)  # [n, K, T, D] against image i's own regions [n, 1, P, D]
        context, _ = _attend(nw, regions[:, None], tf.cast(negative_mask, tf.bool), gamma1)
        cos = tf.reduce_sum(tf.math.l2_normalize(nw, axis=-1) * tf.math.l2_normalize(context, axis=-1), -1)
        extra = gamma3 * _relevance(cos, tf.cast(negative_mask, tf.bool), gamma2, relevance)
    loss = _symmetric_ce(gamma3 * text_rel, gamma3 * image_rel, labels, class_ids, extra, negative_valid)

    own = tf.gather(attention, labels, axis=1, batch_dims=1)  # [n, T, P]: caption i on image i
    shape = tf.shape(own)
    return loss, tf.reshape(own, [shape[0], shape[1], r, shape[2] // r])


def sentence_loss(
    image_global: tf.Tensor, sentence: tf.Tensor, class_ids: tf.Tensor | None, gamma3: float = 10.0,
    negative_sentences: tf.Tensor | None = None, negative_valid: tf.Tensor | None = None,
) -> tf.Tensor:
    """DAMSM sentence-level loss per example [N]: logits gamma3 * cos(image, sentence) over the global
    batch, same-class negatives masked, CE over images for the sentence + CE over sentences for the image
    (the latter also over image i's hard negative captions ``negative_sentences`` [N, K, D] where
    ``negative_valid`` [N, K]).
    """
    v = tf.math.l2_normalize(tf.cast(image_global, tf.float32), axis=-1)
    t = tf.math.l2_normalize(tf.cast(sentence, tf.float32), axis=-1)
    all_v, offset = gather_global(v)
    all_t, _ = gather_global(t)
    labels = offset + tf.range(tf.shape(t)[0])
    text_logits = gamma3 * tf.matmul(t, all_v, transpose_b=True)
    image_logits = gamma3 * tf.matmul(v, all_t, transpose_b=True)
    extra = None
    if negative_sentences is not None:
        neg = tf.math.l2_normalize(tf.cast(negative_sentences, tf.float32), axis=-1)
        extra = gamma3 * tf.reduce_sum(v[:, None] * neg, axis=-1)
    return _symmetric_ce(text_logits, image_logits, labels, class_ids, extra, negative_valid)


def damsm_loss(
    regions: tf.Tensor,
    image_global: tf.Tensor,
    words: tf.Tensor,
    sentence: tf.Tensor,
    word_mask: tf.Tensor,
    class_ids: tf.Tensor | None,
    gamma1: float = 4.0,
    gamma2: float = 5.0,
    gamma3: float = 10.0,
    relevance: str = "paper",
    negatives: dict[str, tf.Tensor] | None = None,
) -> dict[str, tf.Tensor]:
    """Both DAMSM losses per example: {"words": [N], "sentence": [N], "total": words + sentence}.

    ``negatives``: hard negative captions per example, {"words" [N, K, T, D], "sentence" [N, K, D],
    "mask" [N, K, T], "valid" [N, K]}.
    """
    n = negatives or {}
    w, _ = words_loss(regions, words, word_mask, class_ids, gamma1, gamma2, gamma3, relevance,
                      n.get("words"), n.get("mask"), n.get("valid"))
    s = sentence_loss(image_global, sentence, class_ids, gamma3, n.get("sentence"), n.get("valid"))
    return {"words": w, "sentence": s, "total": w + s}


def retrieval_accuracy(image_global: tf.Tensor, sentence: tf.Tensor) -> tf.Tensor:
    """Fraction of this replica's sentences whose most similar image (cosine, over the global batch)
    is their own image. A monitoring metric, not differentiable."""
    v = tf.math.l2_normalize(tf.cast(image_global, tf.float32), axis=-1)
    t = tf.math.l2_normalize(tf.cast(sentence, tf.float32), axis=-1)
    all_v, offset = gather_global(v)
    best = tf.argmax(tf.matmul(t, all_v, transpose_b=True), axis=1, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(best, offset + tf.range(tf.shape(t)[0])), tf.float32))

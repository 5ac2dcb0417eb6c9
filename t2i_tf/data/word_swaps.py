"""Hard negative captions by swapping one word for another of its group ("red" -> "blue", "left" -> "right").

An in-batch matching loss is satisfied by whatever tells a batch's captions apart: on captioned CSS a few objects
do, so the sentence vector never has to hold every object (docs/generator_quality.md). A caption with one
attribute word swapped describes a scene that differs in exactly that attribute; asking the image to prefer its own
caption over such neighbours makes every colour, shape, size and place word count. This is the swapped-word hard
negative of NegCLIP (Yuksekgonul et al., ICLR 2023), applied to the project's matching losses
(t2i_tf/losses/damsm.py).

Groups come from ``--swap_word_groups``: a named set (``css``: the CSS colours, shapes, sizes and the place words
top/bottom and left/right) or explicit groups, ``"red,blue,green;small,large"``. Words missing from the vocabulary
are left out; a group needs two known words.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from t2i_tf.data.css_scene import COLORS, SHAPES, SIZES
from t2i_tf.errors import UserError

NAMED_GROUPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "css": (tuple(COLORS), tuple(SHAPES), tuple(SIZES), ("top", "bottom"), ("left", "right")),
}


def parse_word_groups(spec: str) -> list[list[str]]:
    """``css`` (a named set) or ``"a,b,c;d,e"`` -> groups of words."""
    spec = (spec or "").strip()
    if spec in NAMED_GROUPS:
        return [list(g) for g in NAMED_GROUPS[spec]]
    groups = [[w.strip().lower() for w in part.split(",") if w.strip()] for part in spec.split(";")]
    groups = [g for g in groups if g]
    if not groups:
        raise UserError(f"--swap_word_groups={spec!r}: give a named set ({', '.join(NAMED_GROUPS)}) or groups of "
                        "interchangeable words, e.g. 'red,blue,green;small,large'")
    for g in groups:
        if len(g) < 2 or len(set(g)) != len(g):
            raise UserError(f"--swap_word_groups: each group needs at least two distinct words; got {','.join(g)}")
    seen: set[str] = set()
    for g in groups:
        if seen & set(g):
            raise UserError(f"--swap_word_groups: {sorted(seen & set(g))} appear in more than one group")
        seen |= set(g)
    return groups


class WordSwapper(tf.Module):
    """Token ids [N, T] -> (ids with one swappable word replaced by another word of its group, valid [N]).

    The position is uniform over the caption's swappable words and the replacement uniform over the rest of that
    word's group. ``valid`` is False for a caption with no swappable word (it comes back unchanged and must not be
    used as a negative). Randomness is stateless: the same ``seed`` gives the same swaps (resumable runs).
    """

    def __init__(self, vocabulary: list[str], spec: str, first_id: int = 2, name: str = "word_swapper"):
        super().__init__(name=name)
        index = {w: i + first_id for i, w in enumerate(vocabulary)}
        groups = [[index[w] for w in g if w in index] for g in parse_word_groups(spec)]
        groups = [g for g in groups if len(g) >= 2]
        if not groups:
            raise UserError(f"--swap_word_groups={spec!r}: no group has two words of this vocabulary, so there is "
                            "nothing to swap; give groups of words the captions use, or --swap_negatives=0")
        size = first_id + len(vocabulary)
        group_of = np.full([size], -1, np.int32)
        position = np.zeros([size], np.int32)
        members = np.zeros([len(groups), max(len(g) for g in groups)], np.int32)
        for gi, g in enumerate(groups):
            for j, token in enumerate(g):
                group_of[token], position[token], members[gi, j] = gi, j, token
        self.num_groups = len(groups)
        self.group_of = tf.constant(group_of)
        self.position = tf.constant(position)
        self.members = tf.constant(members)
        self.counts = tf.constant([len(g) for g in groups], tf.int32)

    def __call__(self, tokens: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        ids = tf.cast(tokens, tf.int32)
        in_range = tf.logical_and(ids >= 0, ids < tf.shape(self.group_of)[0])
        group = tf.where(in_range, tf.gather(self.group_of, tf.clip_by_value(ids, 0, tf.shape(self.group_of)[0] - 1)), -1)
        swappable = group >= 0
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        noise = tf.random.stateless_uniform(tf.shape(ids), seeds[0])
        where = tf.argmax(tf.where(swappable, noise, -1.0), axis=1, output_type=tf.int32)
        valid = tf.reduce_any(swappable, axis=1)
        old = tf.gather(ids, where, batch_dims=1)
        g = tf.maximum(tf.gather(group, where, batch_dims=1), 0)
        n = tf.gather(self.counts, g)
        r = tf.random.stateless_uniform(tf.shape(n), seeds[1])
        shift = 1 + tf.cast(tf.floor(r * tf.cast(n - 1, tf.float32)), tf.int32)  # 1 .. n-1: never the same word
        new = tf.gather_nd(self.members, tf.stack([g, (tf.gather(self.position, old) + shift) % n], axis=1))
        hit = tf.logical_and(tf.one_hot(where, tf.shape(ids)[1], on_value=True, off_value=False), valid[:, None])
        return tf.cast(tf.where(hit, new[:, None], ids), tokens.dtype), valid

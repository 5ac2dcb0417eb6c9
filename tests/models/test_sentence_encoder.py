"""The co-trained text / image encoders: the word-slot layout encoder's routing and additivity, the grid CNN."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.models.sentence_encoder import GridImageEncoder, WordSlotEncoder, adaptive_pool_matrix


@pytest.mark.parametrize("size,cells,bins", [
    (4, 3, [(0, 2), (1, 3), (2, 4)]),
    (8, 3, [(0, 3), (2, 6), (5, 8)]),  # torch.nn.AdaptiveAvgPool2d's bins for 8 -> 3
    (6, 3, [(0, 2), (2, 4), (4, 6)]),
])
def test_adaptive_pool_matrix_averages_torch_style_bins(size, cells, bins):
    pool = adaptive_pool_matrix(size, cells).numpy()
    assert pool.shape == (cells, size)
    for row, (start, end) in zip(pool, bins):
        expected = np.zeros(size)
        expected[start:end] = 1.0 / (end - start)
        np.testing.assert_allclose(row, expected, rtol=1e-6)


def _route_everything_to(encoder, slot):
    """Make the router send every word to ``slot`` (a huge bias, zero kernel)."""
    kernel, bias = encoder.route.get_weights()
    bias = np.full_like(bias, -1e4)
    bias[slot] = 1e4
    encoder.route.set_weights([np.zeros_like(kernel), bias])


def test_word_slot_layout_is_the_sum_of_the_routed_words_own_embeddings():
    enc = WordSlotEncoder(vocab_size=12, embed_dim=8, hidden_dim=8, out_dim=9 * 4, grid=3)
    ids = tf.constant([[3, 5, 7, 0, 0], [5, 3, 0, 0, 0]], tf.int64)
    enc(ids)
    _route_everything_to(enc, slot=5)
    layout = enc(ids).numpy().reshape(2, 9, 4)
    values = enc.value.get_weights()[0]
    np.testing.assert_allclose(layout[0, 5], values[3] + values[5] + values[7], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layout[1, 5], values[5] + values[3], rtol=1e-5, atol=1e-6)  # order-free sums
    assert np.abs(np.delete(layout, 5, axis=1)).max() < 1e-6  # nothing in the other slots, padding adds nothing
    # The "no slot" choice (index 9) drops words entirely.
    _route_everything_to(enc, slot=9)
    assert np.abs(enc(ids).numpy()).max() < 1e-6


def test_word_slot_routing_is_per_word_and_ignores_padding():
    enc = WordSlotEncoder(vocab_size=12, embed_dim=8, hidden_dim=8, out_dim=4 * 2, grid=2)
    ids = tf.constant([[3, 5, 0, 0]], tf.int64)
    routing = enc.routing(ids).numpy()
    assert routing.shape == (1, 4, 4)
    assert np.all(routing[0, 2:] == 0)  # padding routes nowhere
    assert np.all(routing[0, :2].sum(axis=-1) < 1)  # part of each word may go to "no slot"
    assert enc(ids).shape == (1, 8)


def test_word_slot_sizes_must_divide():
    with pytest.raises(ValueError, match="multiple of slot_grid"):
        WordSlotEncoder(vocab_size=12, out_dim=100, grid=3)
    with pytest.raises(ValueError, match="multiple of slot_grid"):
        GridImageEncoder(image_size=32, out_dim=100, grid=3)
    with pytest.raises(ValueError, match="smaller than"):
        GridImageEncoder(image_size=2, out_dim=9, grid=3)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_grid_image_encoder_gives_one_vector_per_cell(size):
    enc = GridImageEncoder(image_size=size, width=4, out_dim=9 * 5, grid=3)
    images = tf.random.stateless_uniform([2, size, size, 3], (1, 2), -1.0, 1.0)
    out = enc(images)
    assert out.shape == (2, 45)
    # Cells follow the image: changing only the bottom-right corner (the last quarter of rows and columns) leaves
    # the top-left cell's vector unchanged and changes the bottom-right one.
    corner = np.zeros([1, size, size, 1], np.float32)
    corner[:, 3 * size // 4:, 3 * size // 4:] = 1.0
    changed = images * (1.0 - 2.0 * corner)
    before, after = out.numpy().reshape(2, 9, 5), enc(changed).numpy().reshape(2, 9, 5)
    np.testing.assert_allclose(before[:, 0], after[:, 0], rtol=1e-5, atol=1e-6)
    assert np.abs(before[:, 8] - after[:, 8]).max() > 1e-4


def test_grid_image_encoder_reads_other_sizes_resized_to_its_own():
    """Stage-II evaluates its 64 px images with Stage-I's 32 px encoder: they are resized, not refused."""
    enc = GridImageEncoder(image_size=16, width=4, out_dim=9 * 2, grid=3)
    small = tf.random.stateless_uniform([2, 16, 16, 3], (3, 4), -1.0, 1.0)
    big = tf.image.resize(small, [32, 32], method="nearest")
    np.testing.assert_allclose(enc(big).numpy(), enc(tf.image.resize(big, [16, 16], antialias=True)).numpy(), rtol=1e-5,
                               atol=1e-6)
    assert enc(big).shape == (2, 18)

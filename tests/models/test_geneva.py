"""GeNeVA networks: shapes, where the previous image joins, conditioning, and clear errors for bad sizes."""

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.models import geneva as gm


def test_generator_draws_canvases_of_the_image_size_and_joins_the_previous_image():
    g = gm.GenevaGenerator(16, (16, 16, 8), c_dim=4, fuse_size=8, fuse_channels=8)
    enc = gm.ImageEncoder((8,))
    prev = tf.random.uniform([3, 16, 16, 3], -1, 1)
    features = enc(prev)
    assert features.shape == (3, 8, 8, 8)
    h, z = tf.random.normal([3, 6]), tf.random.normal([3, 5])
    out = g({"z": z, "h": h, "features": features})
    assert out["images"].shape == (3, 16, 16, 3) and out["mu"].shape == (3, 4) and out["logvar"].shape == (3, 4)
    assert float(tf.reduce_max(tf.abs(out["images"]))) <= 1.0
    other = g({"z": z, "h": h, "features": enc(-prev)})["images"]
    assert float(tf.reduce_max(tf.abs(other - out["images"]))) > 1e-4  # the previous canvas reaches the output
    noisy = g({"z": z, "h": h, "features": features, "ca_noise": tf.ones([3, 4])})["images"]
    assert float(tf.reduce_max(tf.abs(noisy - out["images"]))) > 1e-5  # the conditioning augmentation samples


@pytest.mark.parametrize("dims, fuse, message", [
    ((16, 16), 8, "has 1 up blocks: 4 x 2\\^1 != --image_size 16"),
    ((16, 16, 8), 16, "must be a size the generator passes through"),
])
def test_generator_refuses_sizes_that_do_not_fit(dims, fuse, message):
    with pytest.raises(ValueError, match=message):
        gm.GenevaGenerator(16, dims, c_dim=4, fuse_size=fuse, fuse_channels=8)


def test_discriminator_scores_against_the_instruction_and_the_previous_image():
    d = gm.GenevaDiscriminator(16, (8, 16, 16), fusion_block=1, num_objects=48, spectral_norm=True)
    x, prev = tf.random.uniform([4, 16, 16, 3], -1, 1), tf.random.uniform([4, 16, 16, 3], -1, 1)
    h = tf.random.normal([4, 6])
    score, aux = d({"images": x, "h": h, "prev_images": prev})
    assert score.shape == (4,) and aux.shape == (4, 48)
    same_prev, _ = d({"images": x, "h": h, "prev_images": x})  # subtracted features: x - x
    other_h, _ = d({"images": x, "h": -h, "prev_images": prev})
    assert not np.allclose(score, same_prev) and not np.allclose(score, other_h)
    with pytest.raises(ValueError, match="--d_fusion_block must be in 1..2"):
        gm.GenevaDiscriminator(16, (8, 16, 16), fusion_block=3, num_objects=48, spectral_norm=False)


def test_instruction_encoders_and_turn_rnn():
    sentence, rnn = gm.SentenceEncoder(12, 4, 6), gm.TurnRnn(5)
    tokens = tf.constant([[3, 4, 5, 0], [0, 0, 0, 0]], tf.int64)  # the second: an empty (padding) instruction
    x = sentence(tokens)
    assert x.shape == (2, 6) and np.isfinite(x.numpy()).all()
    h, state = rnn((gm.InstructionProjection(5)(x), tf.zeros([2, 5])))
    assert h.shape == (2, 5) and state.shape == (2, 5)
    h2, _ = rnn((gm.InstructionProjection(5)(x), state))
    assert not np.allclose(h, h2)  # the state carries the earlier turns
    with pytest.raises(ValueError, match="--sentence_dim must be even"):
        gm.SentenceEncoder(12, 4, 5)


def test_parse_dims_names_the_flag():
    assert gm.parse_dims("64,128", "generator_dims") == (64, 128)
    with pytest.raises(ValueError, match="--generator_dims must be positive ints"):
        gm.parse_dims("64,x", "generator_dims")

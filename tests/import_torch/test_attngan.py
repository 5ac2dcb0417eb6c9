"""Parity of our DAMSM / AttnGAN models with the official taoxugit/AttnGAN networks, through the checkpoint importer.

Fixtures (tests/import_torch/fixtures/attngan, made by make_attngan_fixtures.py from the official code): tensor
names and shapes of each official state dict, inputs and expected outputs. The weights themselves are regenerated
here from the same seeds (``seeded_weights``), so nothing here needs PyTorch.
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.errors import UserError
from t2i_tf.import_torch import attngan as imp
from t2i_tf.models.attngan import AttnGanDiscriminator, AttnGanGenerator
from t2i_tf.models.damsm import DamsmImageEncoder, DamsmTextEncoder
from tests.import_torch.make_attngan_fixtures import (CNN_INPUT_SIZE, IMAGE_SEEDS, SEEDS, seeded_images,
                                                     seeded_weights)

FIX = os.path.join(os.path.dirname(__file__), "fixtures", "attngan")
RTOL = 1e-4


def _load(key: str):
    with open(os.path.join(FIX, f"{key}_shapes.json")) as f:
        shapes = json.load(f)
    return seeded_weights(shapes, SEEDS[key]), dict(np.load(os.path.join(FIX, f"{key}.npz")))


def _close(ours, expected, what: str) -> None:
    ours, expected = np.asarray(ours), np.asarray(expected)
    assert ours.shape == expected.shape, (what, ours.shape, expected.shape)
    err = np.abs(ours - expected).max() / max(np.abs(expected).max(), 1e-12)
    assert err <= RTOL, f"{what}: relative error {err:.2e}"


def _nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


# ------------------------------------------------------------------------------------------------ DAMSM text
def _text_encoder():
    sd, fx = _load("rnn")
    ixtoword = {0: "<end>", **{i: f"w{i}" for i in range(1, 20)}}
    vocab = imp.vocabulary_from_ixtoword(ixtoword)
    enc = DamsmTextEncoder(len(vocab) + 2, 12, 5, 0.5)
    enc(tf.ones([1, 6], tf.int64))
    return sd, fx, enc


def test_rnn_encoder_matches_official_with_captions_of_different_lengths():
    sd, fx, enc = _text_encoder()
    imp.import_damsm_text(sd, enc)
    tokens = imp.official_to_our_ids(fx["captions"])
    words, sentence = enc(tf.constant(tokens), training=False)
    _close(sentence, fx["sent_emb"], "sent_emb")
    t = fx["words_emb"].shape[2]  # pad_packed_sequence pads to the longest caption (6 here)
    _close(np.transpose(words.numpy()[:, :t], (0, 2, 1)), fx["words_emb"], "words_emb")
    # trailing padding (ours pads to max_len) changes neither output
    longer = np.concatenate([tokens, np.zeros((3, 3), np.int64)], axis=1)
    w2, s2 = enc(tf.constant(longer), training=False)
    np.testing.assert_allclose(s2, sentence, atol=1e-6)
    assert np.all(w2.numpy()[:, t:] == 0)


def test_text_import_permutes_embedding_rows_to_our_ids():
    sd, _, enc = _text_encoder()
    imp.import_damsm_text(sd, enc)
    table = enc.embedding.embeddings.numpy()
    emb = sd["encoder.weight"]
    np.testing.assert_array_equal(table[0], emb[0])
    np.testing.assert_array_equal(table[1], 0.0)  # OOV: the official code has none
    np.testing.assert_array_equal(table[2:], emb[1:])
    np.testing.assert_array_equal(imp.official_to_our_ids(np.array([[3, 1, 0]])), [[4, 2, 0]])


def test_text_import_errors_name_the_tensor():
    sd, _, enc = _text_encoder()
    bad = dict(sd)
    del bad["rnn.bias_hh_l0_reverse"]
    with pytest.raises(UserError, match="rnn.bias_hh_l0_reverse"):
        imp.import_damsm_text(bad, enc)
    extra = dict(sd, **{"decoder.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(UserError, match="decoder.weight"):
        imp.import_damsm_text(extra, enc)
    wrong = dict(sd, **{"rnn.weight_hh_l0": np.zeros((20, 4), np.float32)})
    with pytest.raises(UserError, match=r"rnn.weight_hh_l0.*\(4, 20\).*\(5, 20\)"):
        imp.import_damsm_text(wrong, enc)


def test_captions_pickle_vocabulary(tmp_path):
    ixtoword = {0: "<end>", 1: "this", 2: "bird", 3: "red"}
    wordtoix = {w: i for i, w in ixtoword.items()}
    path = tmp_path / "captions.pickle"
    with open(path, "wb") as f:
        pickle.dump([[[1, 2]], [[2, 3]], ixtoword, wordtoix], f, protocol=2)
    got_ix, got_wi = imp.read_captions_pickle(path)
    assert got_ix == ixtoword and got_wi == wordtoix
    vocab = imp.vocabulary_from_ixtoword(got_ix)
    assert vocab == ["this", "bird", "red"]
    from t2i_tf.data.text import Tokenizer

    ours = Tokenizer(vocab, 4)(tf.constant(["this red bird"])).numpy()
    np.testing.assert_array_equal(ours, imp.official_to_our_ids(np.array([[1, 3, 2, 0]])))
    with pytest.raises(UserError, match="ids"):
        imp.vocabulary_from_ixtoword({0: "<end>", 2: "x"})


# ------------------------------------------------------------------------------------------------ DAMSM image
def test_cnn_encoder_matches_official_inception():
    sd, fx = _load("cnn")
    enc = DamsmImageEncoder(CNN_INPUT_SIZE, 10, "inception_v3")
    images = _nhwc(seeded_images(IMAGE_SEEDS["cnn"], 2, CNN_INPUT_SIZE))
    enc(tf.constant(images[:1]))
    imp.import_damsm_image(sd, enc)
    assert enc.trainable_variables and all("proj" in v.path for v in enc.trainable_variables)
    regions, global_ = enc(tf.constant(images), training=False)
    _close(global_, fx["cnn_code"], "cnn_code")
    _close(regions, _nhwc(fx["features"]), "features")


# ------------------------------------------------------------------------------------------------ G and D
def test_generator_matches_official_g_net():
    sd, fx = _load("g")
    dims = imp.generator_dims(sd)
    assert dims == {"num_stages": 3, "ngf": 4, "z_dim": 8, "c_dim": 6, "word_dim": 10, "sentence_dim": 10,
                    "num_residual": 2}
    g = AttnGanGenerator(base_size=64, sync_bn=False, **dims)
    words = np.transpose(fx["words_emb"], (0, 2, 1))
    inputs = (tf.constant(fx["z"]), tf.constant(fx["sent_emb"]), tf.constant(words), tf.constant(~fx["mask"]),
              tf.constant(fx["eps"]))
    g(inputs)
    imp.import_attngan_generator(sd, g)
    out = g(inputs, training=False)
    _close(out["mu"], fx["mu"], "mu")
    _close(out["logvar"], fx["logvar"], "logvar")
    imgs = [i.numpy() for i in out["images"]]
    _close(imgs[0][:, ::2, ::2], _nhwc(fx["image64_s2"]), "image 64")
    _close(imgs[1][:, ::2, ::2], _nhwc(fx["image128_s2"]), "image 128")
    _close(imgs[2][:, ::4, ::4], _nhwc(fx["image256_s4"]), "image 256")
    _close(imgs[2][:, :16, :16], _nhwc(fx["image256_corner"]), "image 256 corner")
    _close(out["attention"][0].numpy()[:, ::2, ::2], _nhwc(fx["att64_s2"]), "attention 64")
    _close(out["attention"][1].numpy()[:, ::4, ::4], _nhwc(fx["att128_s4"]), "attention 128")


@pytest.mark.parametrize("key,size", [("d64", 64), ("d128", 128), ("d256", 256)])
def test_discriminators_match_official(key, size):
    sd, fx = _load(key)
    dims = imp.discriminator_dims(sd)
    assert dims == {"image_size": size, "ndf": 4, "sentence_dim": 10}
    d = AttnGanDiscriminator(sync_bn=False, **dims)
    images = tf.constant(_nhwc(seeded_images(IMAGE_SEEDS[key], 2, size)))
    sent = tf.constant(fx["sent_emb"])
    d((images, sent))
    imp.import_attngan_discriminator(sd, d)
    _close(d.encode(images, training=False), _nhwc(fx["code"]), "code")
    out = d((images, sent), training=False)
    _close(out["cond"], fx["cond_logits"], "cond logits")
    _close(out["uncond"], fx["uncond_logits"], "uncond logits")
    _close(tf.sigmoid(out["cond"]), fx["cond_probs"], "cond probs")


def test_generator_import_refuses_mismatched_shapes():
    sd, _ = _load("g")
    g = AttnGanGenerator(num_stages=3, base_size=64, ngf=4, z_dim=8, c_dim=6, word_dim=10, sentence_dim=10,
                         num_residual=2, sync_bn=False)
    g((tf.zeros([1, 8]), tf.zeros([1, 10]), tf.zeros([1, 3, 10]), None))
    bad = dict(sd, **{"img_net3.img.0.weight": np.zeros((3, 5, 3, 3), np.float32)})
    with pytest.raises(UserError, match=r"img_net3.img.0.weight.*\(3, 3, 5, 3\).*\(3, 3, 4, 3\)"):
        imp.import_attngan_generator(bad, g)
    two = AttnGanGenerator(num_stages=2, base_size=64, ngf=4, z_dim=8, c_dim=6, word_dim=10, sentence_dim=10,
                           num_residual=2, sync_bn=False)
    two((tf.zeros([1, 8]), tf.zeros([1, 10]), tf.zeros([1, 3, 10]), None))
    with pytest.raises(UserError, match="not used: .*h_net3"):
        imp.import_attngan_generator(sd, two)

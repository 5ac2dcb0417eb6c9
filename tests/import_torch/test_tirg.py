"""Official google/tirg weights in our paper-preset model give the official outputs (fixtures made by running the
official code: tests/import_torch/make_tirg_fixtures.py). No PyTorch needed."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data.text import Tokenizer
from t2i_tf.errors import UserError
from t2i_tf.import_torch.tirg import (build_model, config_for_state_dict, import_tirg, load_resnet18_weights,
                                      load_tirg_state_dict, official_tokens, official_vocabulary, read_state_dict)
from tests.import_torch.make_tirg_fixtures import HERE, synthetic_state_dict

INPUTS = np.load(os.path.join(HERE, "inputs.npz"))
with open(os.path.join(HERE, "state_dicts.json")) as _f:
    SHAPES = json.load(_f)
with open(os.path.join(HERE, "vocab.json")) as _f:
    VOCAB = json.load(_f)
TEXTS = [str(t) for t in INPUTS["texts"]]
VOCAB_TEXTS = [str(t) for t in INPUTS["vocab_texts"]]


def _rel(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def _images():
    return tf.constant(INPUTS["images"].astype(np.float32) / 127.5 - 1.0)  # as the CSS reader decodes


def _outputs(model, vocab):
    tokens = Tokenizer(vocab, 16)(tf.constant(TEXTS))
    x = _images()
    _, image = model.image_encoder(x, training=False)
    return {"image": image.numpy(), "text": model.text_encoder(tokens, training=False).numpy(),
            "composed_norm": model.compose(x, tokens, training=False).numpy(),
            "image_norm": model.embed_images(x, training=False).numpy()}


@pytest.fixture(scope="module")
def imported_tirg():
    return import_tirg(synthetic_state_dict(SHAPES["tirg"]), vocabulary_texts=VOCAB_TEXTS)


@pytest.mark.parametrize("composition", ["tirg", "concat", "tirg_lastconv"])
def test_imported_model_gives_the_official_outputs(composition, imported_tirg):
    if composition == "tirg":
        model, config, vocab = imported_tirg
    else:
        model, config, vocab = import_tirg(synthetic_state_dict(SHAPES[composition]), vocabulary_texts=VOCAB_TEXTS)
    assert config["composition"] == composition and config["embed_dim"] == 32
    want = np.load(os.path.join(HERE, f"{composition}.npz"))
    for name, got in _outputs(model, vocab).items():
        assert _rel(got, want[name]) <= 1e-4, (composition, name, _rel(got, want[name]))


def test_tf_same_padding_would_not_match(imported_tirg):
    """The fixture can fail: TF 'same' padding (bottom/right only on strided layers) gives other features."""
    sd = synthetic_state_dict(SHAPES["tirg"])
    model = build_model(config_for_state_dict(sd, image_padding="same"), imported_tirg[2])
    load_tirg_state_dict(model, sd)
    want = np.load(os.path.join(HERE, "tirg.npz"))
    assert _rel(_outputs(model, imported_tirg[2])["image"], want["image"]) > 1e-2


def test_vocabulary_and_word_ids_are_the_official_ones():
    vocab = official_vocabulary(VOCAB_TEXTS)
    official = VOCAB["word2id"]
    assert official["<UNK>"] == 0 and {w: i + 1 for i, w in enumerate(vocab)} == {
        w: i for w, i in official.items() if w != "<UNK>"}
    ids = Tokenizer(vocab, 16)(tf.constant(TEXTS)).numpy()
    for row, encoded in zip(ids, VOCAB["encoded_texts"]):
        # our id = official id + 1 (0 is padding; official <UNK> 0 is our out-of-vocabulary 1)
        assert row[: len(encoded)].tolist() == [i + 1 for i in encoded] and not row[len(encoded):].any()
    assert official_tokens("Make the bottom-center object small!") == ["make", "the", "bottomcenter", "object", "small"]


def test_wrong_vocabulary_is_refused():
    with pytest.raises(UserError, match="embedding has 25 rows"):
        import_tirg(synthetic_state_dict(SHAPES["tirg"]), vocabulary_texts=VOCAB_TEXTS[:2])


def test_every_tensor_is_consumed_and_checked(imported_tirg):
    model, _, _ = imported_tirg
    sd = synthetic_state_dict(SHAPES["tirg"])
    with pytest.raises(UserError, match=r"not used by the model: extra.weight \(3,\)"):
        load_tirg_state_dict(model, dict(sd, **{"extra.weight": np.zeros(3, np.float32)}))
    missing = dict(sd)
    del missing["img_model.layer3.1.bn2.running_var"]
    with pytest.raises(UserError, match="'img_model.layer3.1.bn2.running_var' is missing"):
        load_tirg_state_dict(model, missing)
    bad = dict(sd, **{"res_info_composer.3.weight": np.zeros((64, 63), np.float32)})
    with pytest.raises(UserError, match=r"'res_info_composer.3.weight' has shape \(64, 63\).*needs \(64, 64\)"):
        load_tirg_state_dict(model, bad)


def _torchvision_resnet18():
    """A torchvision resnet18 state dict (true key names and shapes), from the official model's img_model."""
    sd = synthetic_state_dict(SHAPES["tirg"])
    out = {k[len("img_model."):]: v for k, v in sd.items() if k.startswith("img_model.") and ".fc." not in k}
    rng = np.random.default_rng(0)
    out.update({"fc.weight": rng.normal(size=(1000, 512)).astype(np.float32), "fc.bias": np.zeros(1000, np.float32)})
    return out


def test_image_weights_give_torchvision_resnet18_features(imported_tirg, tmp_path):
    sd = _torchvision_resnet18()
    assert len(sd) == 122  # resnet18: 62 parameters + 3 buffers of each of its 20 BNs
    model = build_model(config_for_state_dict(synthetic_state_dict(SHAPES["tirg"])), imported_tirg[2])
    path = str(tmp_path / "resnet18.npz")
    np.savez(path, **sd)
    load_resnet18_weights(model.image_encoder, read_state_dict(path))
    fmap = model.image_encoder.feature_map(_images(), training=False).numpy()
    want = np.load(os.path.join(HERE, "tirg.npz"))["pooled"]
    assert _rel(fmap.mean(axis=(1, 2)), want) <= 1e-4
    with pytest.raises(UserError, match="not used by the model: layer5.weight"):
        load_resnet18_weights(model.image_encoder, dict(sd, **{"layer5.weight": np.zeros(1, np.float32)}))


def test_read_state_dict_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_state_dict(str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read the state dict in .*bad.npz"):
        read_state_dict(str(bad))
    prefixed = tmp_path / "ckpt.npz"
    np.savez(prefixed, **{"model_state_dict.a": np.ones(4, np.float32)})
    assert list(read_state_dict(str(prefixed), key="model_state_dict")) == ["a"]

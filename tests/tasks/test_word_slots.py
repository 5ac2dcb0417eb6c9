"""sentence_encoder=word_slots in DAMSM and the AttnGAN trained on it: the layout sentence feature end to end."""

import numpy as np
import pytest
import tensorflow as tf

from configs import attngan as attngan_cfg
from configs import damsm as damsm_cfg
from t2i_tf.errors import UserError
from t2i_tf.tasks.attngan import AttnGanTask
from t2i_tf.tasks.damsm import DamsmTask
from tests.conftest import fit_task

SLOTS = dict(sentence_encoder="word_slots", slot_grid=3, slot_dim=4)


@pytest.fixture(scope="module")
def slot_damsm(captioned_css, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("slot_damsm"))
    task = DamsmTask(dict(damsm_cfg.TEST, data_dir=captioned_css[16], seed=0, **SLOTS))
    metrics = fit_task(task, workdir, num_iters=3)
    return task, workdir, metrics


def test_damsm_word_slots_sentence_is_a_layout_matched_against_pooled_regions(slot_damsm, tmp_path):
    task, _, metrics = slot_damsm
    assert task.sentence_dim == 36 and task.feature_dim == 16  # 9 slots x 4; words stay 2 x hidden_dim (8)
    assert np.isfinite(metrics["eval/sentence_loss"]) and np.isfinite(metrics["eval/words_loss"])
    tokens = task.tokenizer(tf.constant(["a large red circle at the top left", "a small blue triangle"]))
    words, sentence = task.text_encoder(tokens, training=False)
    assert words.shape[-1] == 16 and sentence.shape == (2, 36)
    regions, global_ = task.image_encoder(tf.zeros([2, 16, 16, 3]), training=False)
    assert regions.shape[-1] == 16 and global_.shape == (2, 36)
    # The sentence is the routed sum of each word's own slot embedding, scaled to norm sqrt(36): with every word sent
    # to slot 4, slot 4 holds the (scaled) sum of the caption's slot embeddings and the other slots nothing.
    kernel, bias = task.text_encoder.route.get_weights()
    forced = np.full_like(bias, -1e4)
    forced[4] = 1e4
    task.text_encoder.route.set_weights([np.zeros_like(kernel), forced])
    try:
        layout = task.text_encoder(tokens, training=False)[1].numpy().reshape(2, 9, 4)
    finally:
        task.text_encoder.route.set_weights([kernel, bias])
    values = task.text_encoder.slot_value.get_weights()[0]
    ids = tokens.numpy()
    for row in range(2):
        total = values[ids[row][ids[row] > 0]].sum(axis=0)
        np.testing.assert_allclose(layout[row, 4], total / np.linalg.norm(total) * 6.0, rtol=1e-4, atol=1e-5)
    assert np.abs(np.delete(layout, 4, axis=1)).max() < 1e-6
    description = task.export(str(tmp_path / "export"))
    assert description["sentence_encoder"] == "word_slots"
    assert description["signatures"]["encode_text"]["outputs"]["sentence"] == "float32 [N,36]"


def test_attngan_conditions_on_a_word_slots_damsm(slot_damsm, captioned_css, tmp_path):
    _, damsm_dir, _ = slot_damsm
    task = AttnGanTask(dict(attngan_cfg.TEST, data_dir=captioned_css[16], damsm_workdir=damsm_dir, seed=0,
                            l1_loss=True, l1_coef=7.0))
    task.prepare(str(tmp_path / "attngan"))
    task.build(tf.distribute.get_strategy())
    assert task.generator.sentence_dim == 36 and task.generator.word_dim == 16
    # --l1_loss: G's loss gains l1_coef x (sum over stages of mean |fake - real|)
    c = task.config
    step = task._step(next(iter(task.train_dataset(tf.distribute.InputContext(), 0))))
    parts = {k: float(v) for k, v in step.items()}
    assert parts["l1_loss"] > 0
    expected = (parts["g_adv"] + c["damsm_weight"] * parts["damsm_loss"] + c["kl_coef"] * parts["kl"]
                + 7.0 * parts["l1_loss"])
    assert parts["g_loss"] == pytest.approx(expected, rel=1e-4)
    out = task.generate(["a large red circle at the top left"], num_samples=2, seed=4)
    assert out["images"].shape == (1, 2, 16, 16, 3)


def test_word_slots_damsm_sizes_are_checked(captioned_css, tmp_path):
    with pytest.raises(UserError, match="slot_dim"):
        DamsmTask(dict(damsm_cfg.TEST, data_dir=captioned_css[16], sentence_encoder="word_slots", slot_dim=0))

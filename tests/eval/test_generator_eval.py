"""Generator evaluation: metrics streamed over held-out batches, the protocol, the JSON and TensorBoard."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2i_tf.data.pixels import quantized
from t2i_tf.errors import UserError
from t2i_tf.eval import generator_eval
from t2i_tf.eval.generator_eval import (
    EvalOptions,
    evaluate_generator,
    write_generator_eval,
)
from tests.tensorboard_events import read_events


class FakeGenerator:
    """Held-out set of N images of 4 classes; ``mode`` says what the "generator" makes of them."""

    image_size = 8

    def __init__(self, n=120, mode="copy", with_cells=False):
        rng = np.random.default_rng(0)
        self.images = rng.uniform(-1, 1, (n, 8, 8, 3)).astype(np.float32)
        self.class_ids = np.arange(n) % 4
        self.cells = rng.integers(0, 49, (n, 9))
        self.mode, self.with_cells, self.seeds = mode, with_cells, []

    def eval_batches(self, num_images, batch_size):
        for start in range(0, min(num_images, len(self.images)), batch_size):
            stop = min(start + batch_size, num_images, len(self.images))
            b = {"image": tf.constant(self.images[start:stop]), "class_id": tf.constant(self.class_ids[start:stop])}
            if self.with_cells:
                b["scene_cells"] = tf.constant(self.cells[start:stop])
            yield b

    own_metrics = False  # True: model_eval_metrics gives a metric of its own
    css_calls = None  # a list: css_metrics records the cells it is given and scores them

    def css_metrics(self, pred_cells, target_cells):
        if self.css_calls is None:
            return {}, {}
        self.css_calls.append((np.array(pred_cells), np.array(target_cells)))
        return {"css_own_empty_cells": float((np.asarray(pred_cells) == 0).mean())}, {"own_css": "merged"}

    def model_eval_metrics(self, num_images, batch_size, seed):
        if not self.own_metrics:
            return {}, {}
        return {"own_images": float(num_images)}, {"own": "a model's own metric, merged in"}

    def generate_images(self, batch, seed):
        self.seeds.append(seed)
        if self.mode == "copy":
            return batch["image"]
        return tf.zeros_like(batch["image"])  # a collapsed generator: one grey image

    def matching_features(self, images, batch):
        onehot = np.eye(4, dtype=np.float32)[batch["class_id"].numpy()]
        if self.mode == "copy":
            return onehot, onehot
        # The collapsed images match no caption better than chance: random image features.
        return np.random.default_rng(len(self.seeds)).normal(size=onehot.shape).astype(np.float32), onehot

    def eval_protocol(self):
        return {"model": "fake"}


@pytest.fixture(scope="module")
def feature_model(tmp_path_factory):
    inputs = keras.Input([8, 8, 3])
    outputs = keras.layers.Dense(6, kernel_initializer=keras.initializers.RandomNormal(seed=1))(
        keras.layers.Flatten()(inputs))
    path = str(tmp_path_factory.mktemp("fid_model") / "features.keras")
    keras.Model(inputs, outputs).save(path)
    return path


def test_perfect_and_collapsed_generators(feature_model):
    perfect, perfect_protocol = evaluate_generator(FakeGenerator(), EvalOptions(num_images=100, batch_size=32,
                                                                               fid_model=feature_model, num_mismatched=20))
    collapsed, _ = evaluate_generator(FakeGenerator(mode="zeros"), EvalOptions(num_images=100, batch_size=32,
                                                                              fid_model=feature_model, num_mismatched=20))
    assert perfect["num_images"] == 100
    assert perfect["fid_keras"] == pytest.approx(0.0, abs=1e-6)
    assert collapsed["fid_keras"] > 1.0
    assert perfect["r_precision"] == 1.0 and perfect["r_precision_std"] == 0.0
    assert collapsed["r_precision"] < 0.5
    assert perfect_protocol["fid_model"]["feature_dim"] == 6 and perfect_protocol["model"] == "fake"
    assert perfect_protocol["r_precision"]["mismatched_captions"] == 20


def test_noise_seed_per_batch_and_image_count():
    fake = FakeGenerator(n=50)
    evaluate_generator(fake, EvalOptions(num_images=45, batch_size=20, seed=7, num_mismatched=5))
    assert fake.seeds == [(7, 0), (7, 1), (7, 2)]
    # A small test set: R-precision ranks among the other-class captions there are, and the protocol says so.
    few, protocol = evaluate_generator(FakeGenerator(n=50), EvalOptions(num_images=20, num_mismatched=99))
    assert protocol["r_precision"]["mismatched_captions"] == 15 and 0.0 <= few["r_precision"] <= 1.0
    assert "among 15 mismatched captions, not 99" in protocol["notes"][0]
    # Fewer usable records than --eval_images: all of them are evaluated, with a note.
    every, protocol = evaluate_generator(FakeGenerator(n=50), EvalOptions(num_images=60, batch_size=20, num_mismatched=5))
    assert every["num_images"] == 50 and "only 50 usable records: all 50 were evaluated" in protocol["notes"][0]
    with pytest.raises(UserError, match="has only 50 usable records; at least 60 are needed"):
        evaluate_generator(FakeGenerator(n=50), EvalOptions(num_images=100, batch_size=20, num_mismatched=5, splits=60))
    with pytest.raises(UserError, match="--eval_images must be >= 10"):
        evaluate_generator(FakeGenerator(n=50), EvalOptions(num_images=5))


class CellReader:
    """A stand-in classifier that reads every scene as empty and the image mean as its feature."""

    def predict_cells(self, images):
        return np.zeros([int(images.shape[0]), 9], np.int64)

    def features(self, images):
        return tf.reduce_mean(images, axis=[1, 2])


def test_css_semantic_scores_and_their_protocol(monkeypatch, tmp_path):
    from t2i_tf.eval import css_semantic

    monkeypatch.setattr(css_semantic, "load_css_classifier", lambda workdir: CellReader())
    fake = FakeGenerator(n=40, with_cells=True)
    fake.cells[:, :] = 0
    fake.cells[:20, 4] = 7  # half the scenes have one object in the centre
    fake.cells[:10, 0] = 3  # ... a quarter a second one at the top left
    metrics, protocol = evaluate_generator(fake, EvalOptions(num_images=40, batch_size=16, css_classifier=str(tmp_path),
                                                             num_mismatched=5))
    assert metrics["css_cell_accuracy"] == pytest.approx((20 * 9 + 10 * 8 + 10 * 7) / (40 * 9))
    assert metrics["css_scene_accuracy"] == pytest.approx(0.5)
    assert metrics["css_object_recall"] == 0.0 and metrics["css_object_f1"] == 0.0
    assert metrics["css_domain_fid"] == pytest.approx(0.0, abs=1e-6)  # a copying generator: same features
    # The text-ignoring reference: two-object and empty scenes are 2 cells apart (30 records have a partner);
    # the reader sees every real image as empty, so it scores those records' scenes against empty predictions.
    usable = (fake.cells > 0).sum(axis=1) != 1
    want = css_semantic.semantic_scores(np.zeros([int(usable.sum()), 9], np.int64), fake.cells[usable])
    assert metrics["css_reference_text_ignoring_cell_accuracy"] == pytest.approx(want["cell_accuracy"])
    assert "30 of 40 records had such a partner" in protocol["css_semantic"]["reference"]
    assert metrics["css_objects_novel"] + metrics["css_objects_seen"] == 30
    assert protocol["css_semantic"]["classifier_workdir"] == str(tmp_path)
    with pytest.raises(UserError, match="needs records with scene cell labels"):
        evaluate_generator(FakeGenerator(n=40), EvalOptions(num_images=40, css_classifier=str(tmp_path), num_mismatched=5))


def test_json_and_tensorboard(tmp_path):
    metrics, protocol = evaluate_generator(FakeGenerator(), EvalOptions(num_images=100, num_mismatched=20))
    path = write_generator_eval(str(tmp_path), 42, metrics, protocol)
    assert path == os.path.join(str(tmp_path), "eval", "generator_metrics_step42.json")
    with open(path) as f:
        record = json.load(f)
    assert record["step"] == 42 and record["metrics"]["r_precision"] == 1.0
    assert record["protocol"]["num_images"] == 100 and "noise" in record["protocol"]
    logged = read_events(os.path.join(str(tmp_path), "eval"))
    assert [step for step, _ in logged["generator/r_precision"]] == [42]


def test_inception_metrics_with_a_graph_of_the_reference_names(tmp_path):
    from tests.eval.test_inception_graph import build_synthetic_inception_graph_def

    pb = tmp_path / "classify_image_graph_def.pb"
    pb.write_bytes(build_synthetic_inception_graph_def().SerializeToString())
    metrics, protocol = evaluate_generator(FakeGenerator(n=20), EvalOptions(num_images=20, batch_size=10,
                                                                            inception_graph=str(pb), num_mismatched=5))
    assert metrics["fid"] == pytest.approx(0.0, abs=1e-3)  # generated == real
    assert metrics["inception_score"] >= 1.0
    assert protocol["inception"]["is_splits"] == 10 and len(protocol["inception"]["weights_sha256"]) == 64


def test_module_exports():
    assert generator_eval.EvalOptions().num_images == 1000


class CountingGenerator(FakeGenerator):
    """Records how many images each matching-features call sees."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []

    def matching_features(self, images, batch):
        self.rows.append(int(images.shape[0]))
        assert int(batch["class_id"].shape[0]) == int(images.shape[0])  # the batch is cut with the images
        return super().matching_features(images, batch)


def test_feature_extractors_see_bounded_chunks_and_give_the_same_metrics(feature_model, monkeypatch):
    """Memory is bounded whatever --eval_batch_size is: extractors see at most EVAL_CHUNK images per call."""
    options = EvalOptions(num_images=100, batch_size=50, fid_model=feature_model, num_mismatched=20)
    whole = evaluate_generator(CountingGenerator(mode="zeros"), options)[0]
    seen = []
    from t2i_tf.eval.inception_graph import KerasFeatureExtractor

    real_features = KerasFeatureExtractor.features
    monkeypatch.setattr(KerasFeatureExtractor, "features",
                        lambda self, x: seen.append(int(x.shape[0])) or real_features(self, x))
    monkeypatch.setattr(generator_eval, "EVAL_CHUNK", 7)
    fake = CountingGenerator(mode="zeros")
    chunked, protocol = evaluate_generator(fake, options)
    assert max(fake.rows) == 7 and sum(fake.rows) == 100 and max(seen) == 7 and sum(seen) == 200
    assert chunked["fid_keras"] == pytest.approx(whole["fid_keras"], rel=1e-6)
    assert "at most 7 images" in protocol["feature_chunk"]


class NoisyGenerator(FakeGenerator):
    """Images that depend on each row's noise, z = generator_noise(n, 3, *seed); ``draws_rows`` as declared."""

    def __init__(self, draws_rows, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.draws_rows, self.drawn = draws_rows, []

    def generate_images(self, batch, seed, rows=None):
        from t2i_tf.models.noise import generator_noise

        images = batch["image"]
        z = generator_noise(int(images.shape[0]), 3, *seed)
        if rows is not None:
            assert self.draws_rows
            images, z = images[rows[0]:rows[1]], z[rows[0]:rows[1]]
        self.drawn.append(int(images.shape[0]))
        return tf.tanh(images + z[:, None, None, :])


def test_the_generator_draws_bounded_chunks_of_the_same_images(feature_model, monkeypatch):
    """A generator that declares draws_rows draws at most EVAL_CHUNK images at a time, and the metrics are those of the
    whole batch's images (rows of its noise, not noise drawn per chunk); one that does not draws each batch whole."""
    options = EvalOptions(num_images=100, batch_size=50, fid_model=feature_model, num_mismatched=20)
    monkeypatch.setattr(generator_eval, "EVAL_CHUNK", 7)
    whole_task, chunked_task = NoisyGenerator(False), NoisyGenerator(True)
    whole, whole_protocol = evaluate_generator(whole_task, options)
    chunked, protocol = evaluate_generator(chunked_task, options)
    assert whole_task.drawn == [50, 50]
    assert max(chunked_task.drawn) == 7 and sum(chunked_task.drawn) == 100 and len(chunked_task.drawn) == 16
    assert chunked == whole and whole["fid_keras"] > 0.0
    assert "at most 7 images" in protocol["generator_chunk"] and "whole" in whole_protocol["generator_chunk"]
    batch = next(NoisyGenerator(True).eval_batches(50, 50))
    drawn = generator_eval.generate_in_chunks(NoisyGenerator(True), batch, (3, 1), size=7).numpy()
    np.testing.assert_array_equal(drawn, quantized(NoisyGenerator(False).generate_images(batch, (3, 1))).numpy())
    # Noise drawn per chunk (generate_images on the chunk's rows alone) would be other images.
    per_chunk = np.concatenate([NoisyGenerator(False).generate_images(
        {"image": batch["image"][i:i + 7]}, (3, 1)).numpy() for i in range(0, 50, 7)])
    assert np.abs(per_chunk - drawn).max() > 0.1


def test_r_precision_draws_mismatched_captions_from_every_caption(tmp_path):
    """A small CUB test set (3 classes x 5 images, 10 captions each): the first captions of other classes are only
    10, every caption gives 100, so all 99 mismatched captions can be drawn."""
    from configs import gan_cls as cfg
    from t2i_tf.datasets.cub.convert import convert_cub
    from t2i_tf.tasks.gan_cls import GanClsTask
    from tests.fixtures_t2i import make_cub

    classes = tuple((c, f"{c:03d}.Species_{c}") for c in range(1, 7))
    fx = make_cub(str(tmp_path / "raw"), classes=classes, per_class=5)
    records = str(tmp_path / "cub")
    convert_cub(fx.cub_dir, records, max_side=16, test_fraction=0.5)
    task = GanClsTask(dict(cfg.TEST, data_dir=records, seed=0))
    os.makedirs(tmp_path / "run")
    task.prepare(str(tmp_path / "run"))  # an untrained model: the protocol, not the scores, is under test
    task.build(tf.distribute.get_strategy())
    metrics, protocol = evaluate_generator(task, EvalOptions(num_images=15, batch_size=4))
    rp = protocol["r_precision"]
    assert metrics["num_images"] == 15 and rp["mismatched_captions"] == 99 == metrics["r_precision_mismatched"]
    assert rp["mismatched_from"].startswith("every caption (150, up to 10 per image)")
    assert not any("mismatched captions, not 99" in note for note in protocol["notes"])
    assert 0.0 <= metrics["r_precision"] <= 1.0


def test_a_models_own_metrics_join_the_generator_eval():
    """GeneratorTask.model_eval_metrics (e.g. sg2im's layout accuracy) is merged into the metrics and protocol."""
    task = FakeGenerator(n=40)
    task.own_metrics = True
    metrics, protocol = evaluate_generator(task, EvalOptions(num_images=30, batch_size=10, seed=0))
    assert metrics["own_images"] == 30.0 and protocol["own"] == "a model's own metric, merged in"


def test_a_models_own_css_metrics_see_the_classifiers_cells_in_record_order(monkeypatch, tmp_path):
    """GeneratorTask.css_metrics (e.g. stackgan_tirg's edited cells) gets the classifier's cells of the generated
    images and the records' scenes, first N in order, and its scores join the CSS metrics."""
    from t2i_tf.eval import css_semantic

    monkeypatch.setattr(css_semantic, "load_css_classifier", lambda workdir: CellReader())
    fake = FakeGenerator(n=40, with_cells=True)
    fake.css_calls = []
    metrics, protocol = evaluate_generator(fake, EvalOptions(num_images=30, batch_size=16, css_classifier=str(tmp_path),
                                                             num_mismatched=5))
    ((pred, target),) = fake.css_calls
    np.testing.assert_array_equal(target, fake.cells[:30])
    assert pred.shape == (30, 9) and metrics["css_own_empty_cells"] == 1.0  # the stand-in reads every cell empty
    assert protocol["css_semantic"]["own_css"] == "merged"

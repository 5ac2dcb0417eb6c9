"""sg2im on converted Visual Genome / COCO-Stuff fixture records: a training step, the layout evaluation, generation
from JSON graphs in the dataset's vocabulary and the export's vocabulary (test preset)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from configs import sg2im as cfg
from t2i_tf.datasets.coco_stuff.convert import CocoFilter, convert_coco_stuff
from t2i_tf.datasets.vg.convert import convert_vg
from t2i_tf.errors import UserError
from t2i_tf.eval.generator_eval import EvalOptions, evaluate_generator
from t2i_tf.tasks.sg2im import Sg2ImTask
from tests.datasets.test_coco_stuff_convert import write_coco
from tests.datasets.test_vg_convert import SETTINGS, write_vg


def trained_task(data_dir, workdir):
    """(task, its evaluation, the losses of its one training step on a batch of the training records)."""
    task = Sg2ImTask(dict(cfg.TEST, data_dir=data_dir, seed=0, batch_size=2, eval_images=4, eval_batch_size=2))
    task.prepare(str(workdir))
    task.build(tf.distribute.get_strategy())
    batch = next(iter(task.train_dataset(tf.distribute.InputContext(), seed=0)))
    losses = {k: float(v) for k, v in task.train_step(batch).items()}
    return task, task.evaluate(1), losses


def test_vg_records_train_evaluate_and_generate(tmp_path, capsys):
    out = str(tmp_path / "vg_records")
    convert_vg(write_vg(tmp_path), out, settings=SETTINGS)
    task, metrics, losses = trained_task(out, tmp_path / "run")
    assert "no mask loss" in capsys.readouterr().out  # VG has no masks; the test preset's mask loss is off
    assert "mask_loss" not in losses and np.isfinite(losses["g_loss"]) and losses["box_loss"] > 0
    assert task.eval_split == "test" and task.vocab.object_names == ("__image__", "man", "tree", "cat", "dog")
    assert task.generator.obj_embeddings.input_dim == 6 and task.d_obj.obj_classifier.units == 6
    assert int(task.g_optimizer.iterations.numpy()) == 1 and int(task.d_obj_optimizer.iterations.numpy()) == 1
    assert metrics["eval/objects"] == 2 and 0 <= metrics["eval/box_iou"] <= 100  # the test split's man and dog
    batch = next(task.eval_batches(4, 4))
    assert batch["objects"].shape == (1, 4) and batch["triples"].shape == (1, 6, 3) and "masks" not in batch
    assert batch["caption"].numpy()[0] == b"man, dog"
    scores, protocol = evaluate_generator(task, EvalOptions(num_images=1, batch_size=1, seed=0, splits=1))
    assert scores["layout_objects"] == 2 and "not applicable" in protocol["css_semantic"]
    # --eval_graph=shuffled draws each record from the next record's graph (CSS's cell-distance partners need cells).
    two = {"objects": tf.constant([[1, 2, 3], [1, 5, 0]]), "triples": tf.constant([[[1, 1, 2]], [[1, 0, 0]]])}
    task.config["eval_graph"] = "shuffled"
    objects, triples = task.eval_graphs(two, seed=0)
    assert objects.numpy().tolist() == [[1, 5, 0], [1, 2, 3]] and triples.numpy()[0].tolist() == [[1, 0, 0]]
    task.config["eval_graph"] = "true"
    graph = {"objects": ["man", "tree", "dog"], "relationships": [[0, "on", 1], [2, "near", 0]]}
    out = task.generate([json.dumps(graph)], num_samples=2)
    assert out["images"].shape == (1, 2, 16, 16, 3) and out["boxes"].shape == (1, 2, 4, 4)
    for bad, words in (({"objects": ["unicorn"]}, "unknown object 'unicorn'.*vg object names"),
                       ({"objects": ["man", "dog"], "relationships": [[0, "left of", 1]]}, "unknown predicate"),
                       ({"objects": ["man"] * 4}, "4 objects, at most 3")):
        with pytest.raises(UserError, match=words) as e:
            task.generate([json.dumps(bad)], num_samples=1)
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="not a scene graph"):
        task.generate(["a large red circle at the top left"], num_samples=1)


def test_coco_records_train_with_masks_and_export_their_vocabulary(tmp_path):
    out = str(tmp_path / "coco_records")
    convert_coco_stuff(write_coco(tmp_path), out, settings=CocoFilter(mask_size=8))
    task, metrics, losses = trained_task(out, tmp_path / "run")
    assert losses["mask_loss"] > 0 and metrics["eval/objects"] == 3
    assert task.eval_split == "val" and task.vocab.num_object_ids == 185 and task.vocab.num_predicates == 7
    batch = next(task.eval_batches(2, 2))
    assert batch["masks"].shape == (1, 9, 4, 4)  # stored at 8 px, read at the preset's 4
    np.testing.assert_array_equal(batch["masks"][0, :4], np.ones([4, 4, 4]))  # image node, person, car, sky
    # One geometric relation per object, then __in_image__ per object.
    triples = [t for t in batch["triples"][0].numpy().tolist() if t[0] >= 0]
    assert len(triples) == 6 and triples[3:] == [[1, 0, 0], [2, 0, 0], [3, 0, 0]]
    assert {t[0] for t in triples[:3]} | {t[2] for t in triples[:3]} <= {1, 2, 3}
    path = str(tmp_path / "export")
    description = task.export(path)
    assert description["dataset"] == "coco_stuff" and description["object_names"][93] == "sky"
    assert description["predicates"][:3] == ["__in_image__", "left of", "right of"]
    loaded = tf.saved_model.load(path).signatures["generate"]
    objects = tf.constant([[1, 2, 94]], tf.int32)  # __image__, person, sky
    got = loaded(objects=objects, triples=tf.constant([[[1, 3, 2], [1, 0, 0], [2, 0, 0]]], tf.int32),
                 seed=tf.constant(0, tf.int64))
    assert got["images"].shape == (1, 16, 16, 3) and got["images"].dtype == tf.uint8

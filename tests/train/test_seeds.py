"""--seed reaches every network's initial weights, chained models included: for every model, the same seed
builds the same weights and another seed other weights (restoring a frozen run inside a build must not
reset the random state)."""

import keras
import numpy as np
import pytest

from t2i_tf.registry import lookup, model_names


@pytest.fixture(scope="module")
def css_edits(tmp_path_factory):
    """A tiny set of CSS edit sequences (geneva's records)."""
    from t2i_tf.datasets.css.edits import write_edit_sequences

    out = str(tmp_path_factory.mktemp("css_edits"))
    write_edit_sequences(out, num_train=4, num_test=2, image_size=16)
    return out


def _configs(tiny_css, captioned_css, trained_damsm, trained_stage1, trained_tirg, css_edits=None):
    """model -> (extra config of its test preset) on the session's tiny data and trained upstream runs."""
    return {
        "geneva": dict(data_dir=css_edits, eval_classifier="", baseline_workdir=""),
        "tirg": dict(data_dir=tiny_css[1]),
        "gan_cls": dict(data_dir=captioned_css[16]),
        "sg2im": dict(data_dir=captioned_css[16]),
        "stackgan": dict(data_dir=captioned_css[16]),
        "stackgan_stage2": dict(data_dir=captioned_css[32], stage=2, stage1_workdir=trained_stage1),
        "stackgan_tirg": dict(data_dir=tiny_css[1], tirg_workdir=trained_tirg),
        "damsm": dict(data_dir=captioned_css[16]),
        "attngan": dict(data_dir=captioned_css[16], damsm_workdir=trained_damsm),
        "srcnn": dict(data_dir=captioned_css[16]),
        "css_classifier": dict(data_dir=captioned_css[16]),
    }


def initial_weights(model: str, overrides: dict, seed: int, workdir: str) -> dict[str, np.ndarray]:
    """Every trainable weight of the networks the run trains (its checkpoint's Keras models), after setup."""
    from t2i_tf.train.trainer import Trainer

    config_module, task_cls = lookup(model)
    task = task_cls(dict(config_module.TEST, seed=seed, **overrides))
    Trainer(task, workdir, num_iters=0, strategy="default", seed=seed, verbose=False).setup()
    out = {}
    for key, item in task.checkpoint_items().items():
        if isinstance(item, keras.layers.Layer):
            for i, w in enumerate(item.trainable_weights):  # by position: layer names get per-process suffixes
                out[f"{key}/{i}"] = np.array(w.numpy())
    assert out, f"{model}: no trainable weights found"
    return out


CASES = ("tirg", "gan_cls", "stackgan", "stackgan_stage2", "stackgan_tirg", "damsm", "attngan", "srcnn", "css_classifier", "sg2im",
         "geneva")


def model_of(case: str) -> str:
    return "stackgan" if case == "stackgan_stage2" else case


@pytest.mark.parametrize("case", CASES)
def test_seed_decides_initial_weights(case, tiny_css, captioned_css, trained_damsm, trained_stage1, trained_tirg,
                                      css_edits, tmp_path):
    overrides = _configs(tiny_css, captioned_css, trained_damsm, trained_stage1, trained_tirg, css_edits)[case]
    model = model_of(case)
    a = initial_weights(model, overrides, 1, str(tmp_path / "a"))
    keras.utils.set_random_seed(99)  # whatever state the process is in, the seed decides
    b = initial_weights(model, overrides, 1, str(tmp_path / "b"))
    c = initial_weights(model, overrides, 2, str(tmp_path / "c"))
    assert a.keys() == b.keys() == c.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"{case}: seed 1 twice gave other {name}")
    # Every network the run trains starts elsewhere with another seed (its kernels; biases and the like start
    # at constants), the networks built after a frozen upstream run is restored included.
    networks = {name.split("/")[0] for name in a}
    differ = {name.split("/")[0] for name in a if not np.array_equal(a[name], c[name])}
    assert differ == networks, f"{case}: seeds 1 and 2 gave the same initial {sorted(networks - differ)}"


def test_every_model_is_covered():
    assert {model_of(case) for case in CASES} == set(model_names())

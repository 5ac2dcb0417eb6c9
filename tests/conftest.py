"""Shared fixtures: a tiny generated CSS dataset converted to TFRecords once per session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def tiny_css(tmp_path_factory):
    """(raw_dir, tfrecord_dir) of a 32 px CSS set: 12 base scenes x 4 edits per split."""
    from t2i_tf.datasets.css.convert import convert_css
    from t2i_tf.datasets.css.generate import generate_css

    root = tmp_path_factory.mktemp("tiny_css")
    raw, records = str(root / "raw"), str(root / "records")
    generate_css(raw, seed=3, num_base_scenes=12, edits_per_scene=4, image_size=32)
    convert_css(raw, records, image_size=32)
    return raw, records


@pytest.fixture(autouse=True)
def _seeded_initialisers():
    """Every test starts from the same Python / NumPy / TF / Keras seeds, so weight inits and random
    tensors are identical from run to run: a threshold that passes once passes on CI."""
    import keras

    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def captioned_css(tmp_path_factory):
    """Captioned CSS records of the same 4 x 3 generated scenes at 16 and 32 px: ``{16: dir, 32: dir}``."""
    from t2i_tf.datasets.css.captions import convert_css_captions
    from t2i_tf.datasets.css.generate import generate_css

    root = tmp_path_factory.mktemp("captioned_css")
    raw = str(root / "raw")
    generate_css(raw, seed=5, num_base_scenes=4, edits_per_scene=3, image_size=16)
    out = {}
    for size in (16, 32):
        out[size] = str(root / f"px{size}")
        convert_css_captions(raw, out[size], image_size=size)
    return out


def fit_task(task, workdir, num_iters=2, **trainer_options):
    """Train ``task`` through the real Trainer for ``num_iters`` steps (one loop, no evaluation on the way)."""
    from t2i_tf.train.trainer import Trainer

    options = dict(strategy="default", log_every=1, eval_every=1000, ckpt_every=1000, steps_per_loop=num_iters,
                   verbose=False)
    options.update(trainer_options)
    return Trainer(task, str(workdir), num_iters=num_iters, **options).fit()


@pytest.fixture(scope="session")
def trained_damsm(captioned_css, tmp_path_factory):
    """Workdir of a 2-step test-preset DAMSM on the 16 px captioned CSS (the frozen encoders of AttnGAN tests)."""
    from configs import damsm
    from t2i_tf.tasks.damsm import DamsmTask

    workdir = str(tmp_path_factory.mktemp("session_damsm"))
    fit_task(DamsmTask(dict(damsm.TEST, data_dir=captioned_css[16])), workdir)
    return workdir


@pytest.fixture(scope="session")
def trained_stage1(captioned_css, tmp_path_factory):
    """Workdir of a 2-step test-preset StackGAN Stage-I on the 16 px captioned CSS."""
    from configs import stackgan
    from t2i_tf.tasks.stackgan import StackGanTask

    workdir = str(tmp_path_factory.mktemp("session_stage1"))
    fit_task(StackGanTask(dict(stackgan.TEST, data_dir=captioned_css[16])), workdir)
    return workdir


@pytest.fixture(scope="session")
def trained_tirg(tiny_css, tmp_path_factory):
    """Workdir of a 4-step test-preset TIRG on the 32 px tiny CSS."""
    from configs import tirg
    from t2i_tf.tasks.tirg import TirgTask

    workdir = str(tmp_path_factory.mktemp("session_tirg"))
    fit_task(TirgTask(dict(tirg.TEST, data_dir=tiny_css[1])), workdir, num_iters=4)
    return workdir

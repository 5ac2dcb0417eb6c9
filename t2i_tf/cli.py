"""The command line behind ``main.py``: absl flags generated from the models' config schemas (configs/).

Every setting flag defaults to None, meaning "take it from the preset" (``--preset``, see
configs/<model>.py); a flag given on the command line wins; a setting the chosen model does not read,
or a mode option given with another mode, is an error.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from absl import flags

from configs.fields import FIELDS
from t2i_tf.errors import UserError
from t2i_tf.registry import lookup, model_names, schema_of
from t2i_tf.tasks.base import GeneratorTask, RetrievalTask
from t2i_tf.runs.config import load_run_config

FLAGS = flags.FLAGS

MODES = ("train", "eval", "export", "generate", "retrieve", "serve")

# ---- the run: which model, what to do, where
flags.DEFINE_string("model", "tirg", f"Model family: {' | '.join(model_names())}.")
flags.DEFINE_string("mode", "train", f"One of {', '.join(MODES)}. train resumes from --workdir and ends with an eval.")
flags.DEFINE_string("preset", None, "Settings preset from configs/<model>.py: paper | cpu | test (default: cpu).")
flags.DEFINE_string("data_dir", None, "Converted TFRecord dir, or tfds:NAME[/CONFIG]@TFDS_DATA_DIR for a dataset a "
                    "t2i_tf TFDS builder prepared. Default: the embedded generated CSS data (made on first use; "
                    "--dataset css or css_captions).")
flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard logs, vocabulary, metrics and config.json (the run's "
                    "settings: eval/export/generate on a workdir reuse them). Default: runs/<model>[_<variant>], "
                    "plus _<dataset> for records other than CSS (runs/gan_cls_cub).")
flags.DEFINE_string("strategy", "auto", "auto | default | one_device | mirrored | multi_worker.")

# ---- options of one mode each (MODE_FLAGS says which): given with another mode, they are an error
flags.DEFINE_string("export_dir", None, "--mode=export: SavedModel output dir; --mode=serve: the export to serve "
                    "(default: <workdir>/export).")
flags.DEFINE_string("host", "127.0.0.1", "--mode=serve: address the web demo listens on (0.0.0.0 for every interface).")
flags.DEFINE_integer("port", 8080, "--mode=serve: port of the web demo.")
flags.DEFINE_string("gallery_dir", None, "--mode=serve of a tirg export: directory of .png/.jpg images to retrieve from.")
flags.DEFINE_list("serve_also", [], "--mode=serve: more export directories to serve beside this run's, a page each "
                  "(e.g. a tirg export next to stackgan_tirg, whose page then shows TIRG's retrieved images).")
flags.DEFINE_string("image", None, "--mode=retrieve: the query's source image; --mode=generate of a model that edits "
                    "images (stackgan_tirg): the image to modify.")
flags.DEFINE_string("text", None, "--mode=retrieve: the modification text. --mode=generate: the caption(s), several "
                    "separated by '|' (default: held-out captions).")
flags.DEFINE_integer("top_k", 10, "--mode=retrieve: how many gallery images to print.")
flags.DEFINE_string("inception_graph", None, "--mode=eval of a generator: the 2015 Inception graph "
                    "(inception-2015-12-05.tgz, its folder or classify_image_graph_def.pb) for IS and FID; skipped without it.")
flags.DEFINE_string("fid_model", None, "--mode=eval of a generator: a Keras model file (.keras) whose features give a "
                    "second FID (fid_keras).")
flags.DEFINE_string("css_classifier", None, "--mode=eval of a generator: workdir of a trained --model=css_classifier "
                    "for CSS semantic accuracy and domain FID (default: runs/css_classifier when it exists and the "
                    "records have scene cells).")
flags.DEFINE_string("eval_output", None, "--mode=eval of a generator: metrics JSON path "
                    "(default <workdir>/eval/generator_metrics_step<N>.json).")
flags.DEFINE_string("output", None, "--mode=generate: PNG path of the sample sheet (default <workdir>/samples/generate_<step>.png).")
flags.DEFINE_boolean("upscale", False, "--mode=generate: upscale the samples with the SRCNN in --srcnn_workdir.")
flags.DEFINE_string("srcnn_workdir", "runs/srcnn", "--mode=generate --upscale: workdir of a trained --model=srcnn run.")

MODE_FLAGS: dict[str, tuple[str, ...]] = {
    "export_dir": ("export", "serve"), "host": ("serve",), "port": ("serve",), "gallery_dir": ("serve",), "serve_also": ("serve",),
    "image": ("retrieve", "generate"), "text": ("retrieve", "generate"), "top_k": ("retrieve",),
    "inception_graph": ("eval",), "fid_model": ("eval",), "css_classifier": ("eval",), "eval_output": ("eval",),
    "output": ("generate",), "upscale": ("generate",), "srcnn_workdir": ("generate",),
}
# Mode options only a generator reads (--mode=eval of a retrieval model has none of them).
GENERATOR_EVAL_FLAGS = ("inception_graph", "fid_model", "css_classifier", "eval_output")


def _define_setting_flags() -> tuple[str, ...]:
    """One flag per setting of any model (configs/fields.py), default None: "the preset's value"."""
    owners: dict[str, list[str]] = {}
    for model in model_names():
        for name in schema_of(model).fields:
            owners.setdefault(name, []).append(model)
    define = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string, bool: flags.DEFINE_boolean}
    for name, models in owners.items():
        field = FIELDS[name]
        where = "every model" if len(models) == len(model_names()) else ", ".join(models)
        define[field.type](name, None, f"{field.help} [{where}; default: the preset's]")
    return tuple(owners)


SETTING_FLAGS = _define_setting_flags()

# Datasets made by the project on first use when no --data_dir is given.
GENERATED_DATASETS = ("css", "css_captions", "css_edits")
# What a dataset changes in a preset made for CSS, for a new run whose command line does not give the setting: CUB
# and Flowers captions do not name left and right, so the random flips the CSS presets turn off come back.
DATASET_SETTINGS: dict[str, dict[str, Any]] = {"cub": {"random_flip": True}, "flowers": {"random_flip": True}}
# CSS-only choices of the cpu presets, replaced on any other dataset when the command line does not give them:
# word slots read a caption as a layout of grid cells ("a red circle at the top left"), which CSS captions are and
# bird, flower or tag captions are not (setting: (CSS value, value elsewhere)).
CSS_LAYOUT_SETTINGS: dict[str, tuple[Any, Any]] = {"text_encoder": ("word_slots", "auto"),
                                                   "sentence_encoder": ("word_slots", "last_state")}
# Settings naming another run's workdir: their preset default follows the dataset suffix of default workdirs.
CHAINED_WORKDIRS = ("stage1_workdir", "damsm_workdir")


def _settings_given(schema: Any) -> dict[str, Any]:
    """The model's settings given on the command line; a UserError for a setting flag the model does not read."""
    given = [name for name in SETTING_FLAGS if FLAGS[name].present]
    foreign = [name for name in given if name not in schema.fields]
    if foreign:
        raise UserError(f"--{foreign[0]} is not a setting of --model={schema.model}; its settings are "
                        f"{' '.join('--' + k for k in sorted(schema.fields))}")
    return {name: FLAGS[name].value for name in given}


def check_mode_flags(mode: str, task_cls: type) -> None:
    """A UserError for a mode option given with a mode (or model) that does not read it."""
    for name, modes in MODE_FLAGS.items():
        if FLAGS[name].present and mode not in modes:
            raise UserError(f"--{name} is an option of --mode={' / --mode='.join(modes)}, not --mode={mode}")
    if mode == "eval" and not issubclass(task_cls, GeneratorTask):
        given = [name for name in GENERATOR_EVAL_FLAGS if FLAGS[name].present]
        if given:
            raise UserError(f"--{given[0]} is for --mode=eval of a generator, not --model={FLAGS.model}")
    if mode == "retrieve" and not issubclass(task_cls, RetrievalTask):
        raise UserError(f"--mode=retrieve is for retrieval models (tirg), not --model={FLAGS.model}")
    if mode == "retrieve" and (not FLAGS.image or FLAGS.text is None):
        raise UserError("--mode=retrieve needs --image=PATH and --text=\"...\"")
    if mode == "generate":
        if not issubclass(task_cls, GeneratorTask):
            raise UserError(f"--mode=generate is for text-to-image models, not --model={FLAGS.model}")
        if FLAGS.image and not task_cls.takes_source_image:
            raise UserError(f"--image is for models that modify an image (stackgan_tirg), not --model={FLAGS.model}")
        if FLAGS.output is not None and not FLAGS.output.lower().endswith(".png"):
            raise UserError(f"--output must be a .png path; got {FLAGS.output!r}")


def resolve_config(schema: Any) -> dict[str, Any]:
    """The preset's values overridden by every setting given on the command line, validated."""
    config = schema.preset(FLAGS.preset)
    config.update(_settings_given(schema))
    return schema.validate(config)


def apply_saved_config(config: dict[str, Any], saved: dict[str, Any] | None, schema: Any) -> dict[str, Any]:
    """A workdir's saved run config with the settings given on this command line on top (None: ``config`` as is).

    So ``--mode=eval|export|generate`` and a resumed training rebuild what was trained; a different
    ``--preset`` than the workdir's is an error rather than a silent mix of two presets. Keys an older
    version saved that the model no longer reads are dropped; keys it did not have yet take their ``Field.before``.
    """
    if saved is None:
        return config
    if FLAGS.preset is not None and FLAGS.preset != saved.get("preset"):
        raise UserError(f"the workdir was trained with --preset={saved.get('preset')}, not --preset={FLAGS.preset}: "
                        "drop --preset or pick another --workdir")
    merged = dict(config, **schema.saved_run_keys(saved))
    merged.update(_settings_given(schema))
    return schema.validate(merged)


def data_dir_flag() -> str | None:
    """--data_dir as a path: ``~`` expanded, and ``tfds:NAME[/CONFIG][:VERSION][@TFDS_DATA_DIR]`` turned into the
    folder a t2i_tf TFDS builder prepared (t2i_tf/tfds/build.py); None when not given."""
    if FLAGS.data_dir is None:
        return None
    if FLAGS.data_dir.startswith("tfds:"):
        from t2i_tf.tfds.build import prepared_dir

        return prepared_dir(FLAGS.data_dir)
    return os.path.expanduser(FLAGS.data_dir)


def resolve_data_dir(config: dict[str, Any], task_cls: Any) -> str:
    """--data_dir checked, or the embedded generated CSS data prepared on first use (rendered at the size the
    task trains on: ``task_cls.records_image_size``)."""
    if FLAGS.data_dir is None:
        if config["dataset"] == "css":
            from t2i_tf.datasets.css.convert import prepare_default_css

            print("using the embedded generated CSS data (generated and converted on first use)", flush=True)
            return prepare_default_css(image_size=task_cls.records_image_size(config), seed=0)
        if config["dataset"] == "css_captions":
            from t2i_tf.datasets.css.captions import prepare_default_css_captions

            print("using the embedded generated captioned CSS data (made on first use)", flush=True)
            return prepare_default_css_captions(image_size=task_cls.records_image_size(config))
        if config["dataset"] == "css_edits":
            from t2i_tf.datasets.css.edits import prepare_default_css_edits

            print("using the embedded generated CSS edit sequences (made on first use)", flush=True)
            return prepare_default_css_edits(image_size=task_cls.records_image_size(config))
        raise UserError(
            f"--dataset={config['dataset']} needs --data_dir (converted records; see README 'Data'); "
            f"without it only {' / '.join(GENERATED_DATASETS)} are generated"
        )
    data_dir = data_dir_flag()
    if not os.path.isdir(data_dir):
        raise UserError(f"--data_dir {data_dir} does not exist")
    if not os.path.isfile(os.path.join(data_dir, "info.json")):
        if os.path.isfile(os.path.join(data_dir, "css_toy_dataset_novel2_small.dup.npy")):
            raise UserError(
                f"{data_dir} is a raw CSS download; convert it first: "
                f"python -m datasets.css.convert --raw_dir={data_dir} --out_dir={data_dir.rstrip('/')}_tfrecords"
            )
        from t2i_tf.tfds.build import prepared_specs

        specs = prepared_specs(data_dir)  # a TFDS data dir, or a folder in one, instead of a prepared dataset's
        raise UserError(f"--data_dir {data_dir} has no info.json: it is not a converted dataset directory " + (
            f"but holds t2i_tf TFDS datasets: give --data_dir={' or '.join(specs)}" if specs else
            "(expected a converter's output, or a t2i_tf TFDS builder's prepared folder: tfds:NAME[/CONFIG]@DATA_DIR)"))
    return data_dir


def records_dataset(config: dict[str, Any]) -> str:
    """The dataset a run will read: ``dataset`` of --data_dir's info.json when given, else --dataset."""
    if FLAGS.data_dir is not None:
        data_dir = data_dir_flag()
        if not os.path.isfile(os.path.join(data_dir, "info.json")):
            return ""  # resolve_data_dir says what is wrong
        from t2i_tf.data.records import read_info

        return str(read_info(data_dir).get("dataset") or "")
    return str(config.get("dataset") or "")


def workdir_suffix(dataset: str) -> str:
    """'' for the CSS data, else '_<dataset>': default workdirs of CUB / Flowers runs are not the CSS runs'."""
    if not dataset or dataset in GENERATED_DATASETS:
        return ""
    return "_" + re.sub(r"[^a-z0-9]+", "_", dataset.lower()).strip("_")


def apply_dataset_settings(config: dict[str, Any], schema: Any, dataset: str) -> dict[str, Any]:
    """``DATASET_SETTINGS`` of ``dataset`` for the settings the command line does not give, each said in a note."""
    settings = dict(DATASET_SETTINGS.get(dataset, {}))
    if dataset and dataset not in GENERATED_DATASETS:
        settings.update({name: elsewhere for name, (css, elsewhere) in CSS_LAYOUT_SETTINGS.items()
                         if config.get(name) == css})
    for name, value in settings.items():
        if name in schema.fields and not FLAGS[name].present and config.get(name) != value:
            print(f"note: {dataset} records: --{name}={value} (the --preset={config.get('preset')} value "
                  f"{config.get(name)} is for CSS; give --{name} to choose)", flush=True)
            config[name] = value
    return config


def _column_order(name: str) -> tuple[int, str]:
    return (int(name.split("@")[1]), name) if "@" in name and name.split("@")[1].isdigit() else (10**9, name)


def print_recall_table(metrics: dict[str, float]) -> None:
    """Print metrics named "<split>/<name>" (e.g. test/R@1) as a Markdown table, one row per split."""
    splits: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        split, _, name = key.partition("/")
        splits.setdefault(split, {})[name] = value
    if not splits:
        return
    cols = sorted({c for row in splits.values() for c in row}, key=_column_order)
    print("| split | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for split, row in splits.items():
        print(f"| {split} | " + " | ".join(f"{row.get(c, float('nan')):.1f}" for c in cols) + " |")


def load_image(path: str):
    """--image as uint8 RGB (the one reader of outside images: PNG / JPEG, bounded pixels, complete files)."""
    from t2i_tf.data.images import read_image

    return read_image(path, f"--image {path}")


def generate_captions() -> list[str] | None:
    """--text split on '|' into captions (None when not given)."""
    if FLAGS.text is None:
        return None
    captions = [c.strip() for c in FLAGS.text.split("|")]
    if not all(captions):
        raise UserError(f"--text has an empty caption: {FLAGS.text!r} (separate captions with '|')")
    return captions


def run_generate(task: GeneratorTask, workdir: str, step: int) -> str:
    """--mode=generate: a PNG sheet of samples per caption (optionally SRCNN-upscaled); returns its path."""
    import numpy as np

    from t2i_tf.eval.sample_grid import captioned_grid

    source = load_image(FLAGS.image) if FLAGS.image else None
    seed = int(task.config["seed"])
    out = task.generate(generate_captions(), int(task.config["num_samples"]), seed=seed, source_image=source)
    images = out["images"]
    for caption, words in out["unknown_words"].items():
        print(f"note: not in the vocabulary (read as unknown): {' '.join(words)}  [{caption}]", file=sys.stderr)
    if FLAGS.upscale:
        from t2i_tf.tasks.srcnn import load_upscaler

        srcnn, srcnn_step = load_upscaler(FLAGS.srcnn_workdir)
        rows, cols = images.shape[:2]
        flat = srcnn.upscale(images.reshape(-1, *images.shape[2:]))
        images = np.asarray(flat).reshape(rows, cols, *flat.shape[1:])
        print(f"upscaled x{srcnn.scale} with the SRCNN of {FLAGS.srcnn_workdir} (step {srcnn_step})")
    path = FLAGS.output or os.path.join(workdir, "samples", f"generate_{step}.png")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    captioned_grid(images, out["captions"]).save(path)
    print(json.dumps({"output": path, "step": step, "images": list(images.shape), "captions": out["captions"],
                      "seed": seed}))
    return path


DEFAULT_CSS_CLASSIFIER = os.path.join("runs", "css_classifier")


def run_generator_eval(task: GeneratorTask, workdir: str, step: int, config: dict[str, Any]) -> dict[str, float]:
    """--mode=eval of a generator: the metrics JSON + TensorBoard; returns the metrics."""
    from t2i_tf.eval.generator_eval import EvalOptions, evaluate_generator, write_generator_eval

    classifier = FLAGS.css_classifier
    if classifier is None and os.path.isdir(DEFAULT_CSS_CLASSIFIER):
        from t2i_tf.data.records import read_info

        info = read_info(config["data_dir"])
        if "scene_cells" in (info.get("extra_int64") or {}) or "scene_cells" in info.get("image_features", []):
            classifier = DEFAULT_CSS_CLASSIFIER  # captioned CSS, or CSS whose gallery images carry their cells
    if classifier is not None and not os.path.isdir(classifier):
        raise UserError(f"--css_classifier {classifier} does not exist (train one: python main.py --model=css_classifier)")
    options = EvalOptions(num_images=int(config["eval_images"]), batch_size=int(config["eval_batch_size"]),
                          seed=int(config["seed"]), inception_graph=FLAGS.inception_graph, fid_model=FLAGS.fid_model,
                          css_classifier=classifier)
    metrics, protocol = evaluate_generator(task, options)
    skipped = [name for name, given in (("IS/FID (no --inception_graph)", FLAGS.inception_graph),
                                        ("CSS semantic accuracy (no --css_classifier)", classifier)) if not given]
    protocol["skipped"] += skipped
    path = write_generator_eval(workdir, step, metrics, protocol, FLAGS.eval_output)
    print(f"generator metrics at step {step} -> {path}")
    for name in protocol["skipped"]:
        print(f"skipped: {name}")
    return metrics


def print_metric_lines(metrics: dict[str, float]) -> None:
    """One ``| name | value |`` row per metric."""
    print("| metric | value |")
    print("|---|---|")
    for key, value in metrics.items():
        print(f"| {key} | {value:.4g} |")


def run_mode(task: Any, trainer: Any, workdir: str, query_image: Any) -> None:
    """Do ``--mode`` with a built task and its Trainer."""
    if FLAGS.mode == "train":
        metrics = trainer.fit()
        print_recall_table(metrics)
    elif FLAGS.mode == "eval" and isinstance(task, GeneratorTask):
        step = trainer.restore()
        print_metric_lines(run_generator_eval(task, workdir, step, task.config))
    elif FLAGS.mode == "eval":
        metrics = trainer.evaluate()
        print_recall_table(metrics)
    elif FLAGS.mode == "export":
        step = trainer.restore()
        path = FLAGS.export_dir or os.path.join(workdir, "export")
        description = task.export(path)
        print(f"exported step {step} to {path}: signatures {', '.join(description['signatures'])}")
    elif FLAGS.mode == "generate":
        run_generate(task, workdir, trainer.restore())
    elif FLAGS.mode == "retrieve":
        trainer.restore()
        results = task.retrieve(query_image, FLAGS.text, top_k=FLAGS.top_k)
        print(json.dumps({"image": FLAGS.image, "text": FLAGS.text, "results": results}, indent=1))
    elif FLAGS.mode == "serve":
        from t2i_tf.export.description import DESCRIPTION_FILE
        from t2i_tf.serve.web import serve

        path = FLAGS.export_dir or os.path.join(workdir, "export")
        if not os.path.isfile(os.path.join(path, DESCRIPTION_FILE)):  # export the latest checkpoint first
            step = trainer.restore()
            task.export(path)
            print(f"exported step {step} to {path}")
        serve([path, *FLAGS.serve_also], host=FLAGS.host, port=FLAGS.port, gallery_dir=FLAGS.gallery_dir)


def run() -> int:
    """Run the selected model and mode; returns a process exit code."""
    config_module, task_cls = lookup(FLAGS.model)
    if FLAGS.mode not in MODES:
        raise UserError(f"--mode must be one of {', '.join(MODES)}; got {FLAGS.mode!r}")
    schema = config_module.SCHEMA
    config = resolve_config(schema)
    check_mode_flags(FLAGS.mode, task_cls)
    from t2i_tf.train.strategy import make_strategy

    strategy = make_strategy(FLAGS.strategy)  # first: MultiWorkerMirroredStrategy must precede every TF op
    query_image = load_image(FLAGS.image) if FLAGS.mode == "retrieve" else None
    dataset = records_dataset(config)
    suffix = workdir_suffix(dataset)
    workdir = FLAGS.workdir or task_cls.default_workdir(config) + suffix
    for key in CHAINED_WORKDIRS:
        if suffix and key in schema.fields and not FLAGS[key].present and config[key] == schema.preset(FLAGS.preset)[key]:
            config[key] += suffix  # runs/damsm -> runs/damsm_cub, as that run's own default workdir
    saved = load_run_config(workdir, FLAGS.model)
    config = apply_saved_config(config, saved, schema)
    if saved is None:
        config = apply_dataset_settings(config, schema, dataset)
    if saved and FLAGS.data_dir is None and os.path.isdir(str(saved.get("data_dir"))):
        config["data_dir"] = saved["data_dir"]
    else:
        config["data_dir"] = resolve_data_dir(config, task_cls)

    import tensorflow as tf

    try:
        from t2i_tf.train.trainer import Trainer

        task = task_cls(config)
        trainer = Trainer(
            task,
            workdir,
            num_iters=int(config["num_iters"]),
            strategy=strategy,
            seed=int(config["seed"]),
            log_every=int(config["log_every"]),
            eval_every=int(config["eval_every"]),
            ckpt_every=int(config["ckpt_every"]),
            steps_per_loop=int(config["steps_per_loop"]),
            jit_compile=bool(config["jit_compile"]),
        )
        run_mode(task, trainer, workdir, query_image)
    except tf.errors.DataLossError as e:  # a truncated or damaged TFRecord file, wherever it was read
        from t2i_tf.data.records import corrupt_data_error

        raise corrupt_data_error(config.get("data_dir"), e) from None
    return 0


def exit_code(argv: list[str]) -> int:
    """Run with the parsed flags; a user error prints one line and gives 2."""
    if len(argv) > 1:
        print(f"error: unexpected arguments {' '.join(argv[1:])} (flags look like --name=value)", file=sys.stderr)
        return 2
    try:
        return run()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv: list[str]) -> None:
    """absl entry point."""
    sys.exit(exit_code(argv))

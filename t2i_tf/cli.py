"""The command line behind ``main.py``: absl flags whose defaults come from ``configs/``.

Every hyperparameter flag defaults to None, meaning "take it from the preset"
(``--preset``, see configs/<model>.py); a flag given on the command line wins.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from absl import flags

from t2i_tf.errors import UserError
from t2i_tf.registry import lookup
from t2i_tf.train.run_config import load_run_config

FLAGS = flags.FLAGS

MODES = ("train", "eval", "export", "generate", "retrieve", "serve")

flags.DEFINE_string("model", "tirg", "Model family: tirg | gan_cls | stackgan | stackgan_tirg | damsm | attngan | srcnn | "
                    "css_classifier.")
flags.DEFINE_string("mode", "train", f"One of {', '.join(MODES)}. train resumes from --workdir and ends with an eval.")
flags.DEFINE_string("preset", None, "Hyperparameter preset from configs/<model>.py: paper | cpu | test (default: cpu).")
flags.DEFINE_string("dataset", None, "Dataset name (tirg: css; gan_cls: css_captions | cub | flowers | any converted text-to-image dir).")
flags.DEFINE_string("data_dir", None, "Converted TFRecord dir. Default: the embedded generated CSS data (made on first use; css or css_captions).")
flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard logs, vocabulary, metrics and config.json (the run's resolved "
                    "flags: eval/export/generate on a workdir reuse them). Default: runs/<model>[_<variant>].")
flags.DEFINE_string("strategy", "auto", "auto | default | one_device | mirrored | multi_worker.")
flags.DEFINE_integer("seed", 0, "Random seed (weights, data order).")
flags.DEFINE_boolean("jit_compile", False, "Compile the train step with XLA.")
flags.DEFINE_integer("steps_per_loop", 50, "Train steps per tf.function call.")
# Hyperparameters (None = from the preset).
flags.DEFINE_integer("batch_size", None, "Global batch size (pairs of queries: must be even).")
flags.DEFINE_integer("num_iters", None, "Total training iterations.")
flags.DEFINE_float("learning_rate", None, "Initial learning rate (tirg: SGD; gan_cls: Adam/RMSprop for G and D).")
flags.DEFINE_float("momentum", None, "SGD momentum.")
flags.DEFINE_float("weight_decay", None, "Weight decay.")
flags.DEFINE_integer("lr_decay_every", None, "Multiply the learning rate by --lr_decay_factor every this many iterations.")
flags.DEFINE_float("lr_decay_factor", None, "Step decay factor.")
flags.DEFINE_integer("embed_dim", None, "Embedding size.")
flags.DEFINE_string("loss", None, "soft_triplet | batch_based_classification.")
flags.DEFINE_string("composition", None, "tirg | tirg_lastconv | concat | imgonly | textonly.")
flags.DEFINE_integer("image_width", None, "Channels of the first ResNet stage (64 = ResNet-18).")
flags.DEFINE_string("image_blocks", None, "Residual blocks per stage, e.g. 2,2,2,2 (ResNet-18).")
flags.DEFINE_string("image_stem", None, "imagenet (7x7/2 conv + max-pool) | small (3x3/2 conv).")
flags.DEFINE_string("image_pool", None, "avg (ResNet's global average pool) | flatten (keeps the spatial layout).")
flags.DEFINE_integer("text_embed_dim", None, "Word embedding size.")
flags.DEFINE_integer("text_hidden_dim", None, "LSTM size.")
flags.DEFINE_float("text_dropout", None, "Dropout on the sentence feature.")
flags.DEFINE_integer("max_text_len", None, "Tokens kept per text.")
flags.DEFINE_float("normalize_scale", None, "Initial value of the learnable L2-normalisation scale.")
flags.DEFINE_integer("log_every", None, "Iterations between log lines / TensorBoard scalars.")
flags.DEFINE_integer("eval_every", None, "Iterations between evaluations (Recall@K on test and a train sample).")
flags.DEFINE_integer("ckpt_every", None, "Iterations between checkpoints.")
flags.DEFINE_integer("train_eval_queries", None, "Train queries sampled for train Recall@K (0 = skip).")
# GAN-CLS / GAN-INT (configs/gan_cls.py has the reference defaults).
flags.DEFINE_string("gan_type", None, "gan | wgan | wgan_gp | vanilla_gan | vanilla_wgan (vanilla = unconditional).")
flags.DEFINE_string("text_encoder", None, "pretrained_embeddings (char-CNN-RNN in the records) | bilstm (raw text) | auto.")
flags.DEFINE_integer("image_size", None, "Generated image size (gan_cls: 4 * 2^k, e.g. 64).")
flags.DEFINE_string("optimizer", None, "gan_cls: adam | rmsprop; srcnn: adam | sgd.")
flags.DEFINE_float("beta1", None, "Adam beta1 (gan_cls: 0.5).")
flags.DEFINE_float("beta2", None, "Adam beta2.")
flags.DEFINE_float("lr_decay", None, "gan_cls: multiply the learning rate by this every --lr_decay_every generator steps.")
flags.DEFINE_integer("z_dim", None, "Noise size (100).")
flags.DEFINE_integer("ngf", None, "Generator width.")
flags.DEFINE_integer("ndf", None, "Discriminator width.")
flags.DEFINE_integer("proj_dim", None, "Text projection size (Reed's nt, 128).")
flags.DEFINE_boolean("cls", None, "Matching-aware discriminator (real/right, wrong/right, fake/right).")
flags.DEFINE_boolean("interp", None, "GAN-INT: generator also trained on interpolated text embeddings.")
flags.DEFINE_float("interp_weight", None, "Weight of the INT generator term.")
flags.DEFINE_float("interp_beta", None, "Interpolation beta (0.5).")
flags.DEFINE_float("label_smoothing", None, "One-sided label smoothing: D's real target is 1 - this (bce types).")
flags.DEFINE_boolean("feature_matching", None, "Add feature matching to the generator loss.")
flags.DEFINE_float("l2_coef", None, "Feature matching weight (100).")
flags.DEFINE_boolean("l1_loss", None, "Add L1 to the real image to the generator loss.")
flags.DEFINE_float("l1_coef", None, "L1 weight (50).")
flags.DEFINE_integer("diter", None, "Critic updates per generator update (wgan types, 5).")
flags.DEFINE_float("clip_value", None, "WGAN weight clipping (0.01).")
flags.DEFINE_float("gp_weight", None, "WGAN-GP lambda (10).")
flags.DEFINE_string("d_norm", None, "Discriminator norm: batch | layer | none | auto.")
flags.DEFINE_boolean("minibatch_discrimination", None, "Minibatch discrimination in D.")
flags.DEFINE_boolean("random_flip", None, "Random horizontal flips in training (off for CSS: captions name left/right).")
flags.DEFINE_integer("num_samples", None, "Images in the TensorBoard sample grid; --mode=generate: images per caption (default 8).")
# StackGAN (configs/stackgan.py).
flags.DEFINE_integer("stage", None, "stackgan: 1 (text -> --image_size) or 2 (Stage-I image + text -> --stage2_size).")
flags.DEFINE_integer("stage2_size", None, "stackgan: Stage-II output size (paper 256, CPU preset 64).")
flags.DEFINE_string("stage1_workdir", None, "stackgan --stage=2: the trained Stage-I run (default runs/stackgan_stage1).")
flags.DEFINE_string("tirg_workdir", None, "stackgan_tirg: the trained --model=tirg run whose composed features condition it.")
flags.DEFINE_integer("c_dim", None, "Conditioning augmentation size (StackGAN 128, AttnGAN 100).")
flags.DEFINE_float("kl_coef", None, "Weight of the conditioning augmentation KL term (2.0 StackGAN, 1.0 AttnGAN).")
flags.DEFINE_integer("num_residual", None, "Residual blocks in the refining generator stages.")
# DAMSM / AttnGAN (configs/damsm.py, configs/attngan.py).
flags.DEFINE_string("backbone", None, "damsm image encoder: cnn (trained from scratch) | inception_v3 (frozen, --inception_weights).")
flags.DEFINE_string("inception_weights", None, "damsm --backbone=inception_v3: Keras InceptionV3 ImageNet weights file (no top).")
flags.DEFINE_float("gamma1", None, "DAMSM: word-region attention sharpness (4).")
flags.DEFINE_float("gamma2", None, "DAMSM: word relevance aggregation (5).")
flags.DEFINE_float("gamma3", None, "DAMSM: softmax smoothing over the batch (10).")
flags.DEFINE_string("relevance", None, "DAMSM word relevance: paper ((1/gamma2) log-sum-exp) | code (the released code's, no 1/gamma2).")
flags.DEFINE_float("rnn_grad_clip", None, "DAMSM: clip the text encoder's gradients to this global norm (0.25; 0 = off).")
flags.DEFINE_string("damsm_workdir", None, "attngan: the trained --model=damsm run (frozen text/image encoders).")
flags.DEFINE_integer("num_stages", None, "attngan: generator stages (3 = 64/128/256 in the paper).")
flags.DEFINE_integer("base_size", None, "attngan: the first stage's image size (64).")
flags.DEFINE_float("damsm_weight", None, "attngan: weight of the DAMSM loss in G's loss (LAMBDA: 5 for CUB).")
flags.DEFINE_boolean("spectral_norm", None, "attngan: spectral normalisation in the discriminators.")
flags.DEFINE_boolean("self_attention", None, "attngan: self-attention in G and D.")
flags.DEFINE_boolean("rgb_skip", None, "attngan: multi-scale skip connections (each stage's image adds the upsampled previous one).")
flags.DEFINE_float("ema_decay", None, "attngan: decay of the generator EMA used for eval/generate/export (0 = no EMA).")
# SRCNN (configs/srcnn.py has the paper's values).
flags.DEFINE_integer("scale", None, "srcnn: upscaling factor (the CPU preset: 4, i.e. 32 -> 128 px).")
flags.DEFINE_integer("n1", None, "srcnn: filters of the 9x9 patch-extraction layer (64).")
flags.DEFINE_integer("n2", None, "srcnn: filters of the non-linear mapping layer (32).")
flags.DEFINE_integer("f1", None, "srcnn: patch-extraction kernel size (9).")
flags.DEFINE_integer("f2", None, "srcnn: mapping kernel size (1).")
flags.DEFINE_integer("f3", None, "srcnn: reconstruction kernel size (5).")
flags.DEFINE_boolean("residual", None, "srcnn: predict the residual over the bicubic input (the paper: the image).")
flags.DEFINE_string("init", None, "srcnn: weight init, paper (N(0, 0.001)) | he.")
flags.DEFINE_string("downscale_method", None, "srcnn: how low-res inputs are made, bicubic | area (antialiased).")
flags.DEFINE_string("hr_sampling", None, "srcnn: auto | native (records at image_size) | crop (the reader's random crops).")
flags.DEFINE_integer("patch_size", None, "srcnn: train on random patches of this size (0 = whole images).")
flags.DEFINE_float("last_layer_lr_scale", None, "srcnn --optimizer=sgd: the last layer's rate / the others' (0.1).")
flags.DEFINE_integer("eval_batch_size", None, "Batch size of evaluation (and of --mode=eval generation).")
# CSS semantic classifier (configs/css_classifier.py).
flags.DEFINE_integer("width", None, "css_classifier: channels of the shape / colour towers.")
flags.DEFINE_integer("hidden_dim", None, "css_classifier: hidden size of the per-cell heads.")
flags.DEFINE_float("lr_min_ratio", None, "css_classifier: cosine decay to this fraction of --learning_rate.")
flags.DEFINE_boolean("random_crop", None, "Resize to 76/64 of the size + random crop in training (off for CSS: objects sit on exact cells).")
flags.DEFINE_float("rescale_prob", None, "css_classifier: fraction of training batches shrunk to a random size and back.")
flags.DEFINE_integer("rescale_min_size", None, "css_classifier: the smallest size of those rescalings.")
flags.DEFINE_integer("eval_max_examples", None, "css_classifier: test scenes scored per evaluation (0 = all).")
# Export / retrieve.
flags.DEFINE_string("export_dir", None, "SavedModel output dir for --mode=export, read by --mode=serve (default: <workdir>/export).")
flags.DEFINE_string("host", "127.0.0.1", "--mode=serve: address the web demo listens on (0.0.0.0 for every interface).")
flags.DEFINE_integer("port", 8080, "--mode=serve: port of the web demo.")
flags.DEFINE_string("gallery_dir", None, "--mode=serve of a tirg export: directory of .png/.jpg images to retrieve from.")
flags.DEFINE_string("image", None, "--mode=retrieve (tirg) / --mode=generate (stackgan_tirg): path of the source image.")
flags.DEFINE_string("text", None, "--mode=retrieve: the modification text. --mode=generate: the caption(s), several "
                    "separated by '|' (default: held-out captions).")
flags.DEFINE_integer("eval_images", 1000, "--mode=eval of a generator: held-out captions to generate for (IS/FID/R-precision/CSS).")
flags.DEFINE_string("inception_graph", None, "--mode=eval: the 2015 Inception graph (inception-2015-12-05.tgz, its folder or "
                    "classify_image_graph_def.pb) for IS and FID; skipped without it.")
flags.DEFINE_string("fid_model", None, "--mode=eval: a Keras model file (.keras) whose features give a second FID (fid_keras).")
flags.DEFINE_string("css_classifier", None, "--mode=eval: workdir of a trained --model=css_classifier for CSS semantic "
                    "accuracy and domain FID (default: runs/css_classifier when it exists and the records have scene cells).")
flags.DEFINE_string("eval_output", None, "--mode=eval of a generator: metrics JSON path "
                    "(default <workdir>/eval/generator_metrics_step<N>.json).")
flags.DEFINE_string("output", None, "--mode=generate: PNG path of the sample sheet (default <workdir>/samples/generate_<step>.png).")
flags.DEFINE_boolean("upscale", False, "--mode=generate: upscale the samples with the SRCNN in --srcnn_workdir.")
flags.DEFINE_string("srcnn_workdir", "runs/srcnn", "--mode=generate --upscale: workdir of a trained --model=srcnn run.")
flags.DEFINE_integer("top_k", 10, "--mode=retrieve: how many gallery images to print.")


# Datasets made by the project on first use when no --data_dir is given.
GENERATED_DATASETS = ("css", "css_captions")


def _flags_set(config: dict[str, Any]) -> dict[str, Any]:
    """The config keys the user set on the command line, with their values."""
    return {name: FLAGS[name].value for name in config if name in FLAGS and FLAGS[name].value is not None}


def resolve_config(config_module: Any) -> dict[str, Any]:
    """The preset's values overridden by every flag the user set."""
    preset = FLAGS.preset or config_module.DEFAULT_PRESET
    if preset not in config_module.PRESETS:
        raise UserError(f"--preset must be one of {', '.join(config_module.PRESETS)}; got {preset!r}")
    config = dict(config_module.PRESETS[preset], preset=preset)
    config.update(_flags_set(config))
    config["seed"] = FLAGS.seed
    return config


def apply_saved_config(config: dict[str, Any], saved: dict[str, Any] | None) -> dict[str, Any]:
    """A workdir's saved run config with the flags set on this command line on top (None: ``config`` as is).

    So ``--mode=eval|export|generate`` and a resumed training rebuild what was trained; a different
    ``--preset`` than the workdir's is an error rather than a silent mix of two presets.
    """
    if saved is None:
        return config
    if FLAGS.preset is not None and FLAGS.preset != saved.get("preset"):
        raise UserError(f"the workdir was trained with --preset={saved.get('preset')}, not --preset={FLAGS.preset}: "
                        "drop --preset or pick another --workdir")
    merged = dict(config, **saved)
    merged.update(_flags_set(merged))
    if FLAGS["seed"].present:
        merged["seed"] = FLAGS.seed
    return merged


def resolve_data_dir(config: dict[str, Any], task_cls: Any) -> str:
    """--data_dir checked, or the embedded generated CSS data prepared on first use (rendered at the size the
    task trains on: ``task_cls.records_image_size``)."""
    if FLAGS.model == "tirg" and config["dataset"] != "css":
        raise UserError(f"--dataset must be css for --model=tirg; got {config['dataset']!r}")
    if FLAGS.data_dir is None:
        if config["dataset"] == "css":
            from datasets.css.convert import prepare_default_css

            print("using the embedded generated CSS data (generated and converted on first use)", flush=True)
            return prepare_default_css(image_size=task_cls.records_image_size(config), seed=0)
        if config["dataset"] == "css_captions":
            from datasets.css.captions import prepare_default_css_captions

            print("using the embedded generated captioned CSS data (made on first use)", flush=True)
            return prepare_default_css_captions(image_size=task_cls.records_image_size(config))
        raise UserError(
            f"--dataset={config['dataset']} needs --data_dir (converted records; see README 'Data'); "
            f"without it only {' / '.join(GENERATED_DATASETS)} are generated"
        )
    data_dir = os.path.expanduser(FLAGS.data_dir)
    if not os.path.isdir(data_dir):
        raise UserError(f"--data_dir {data_dir} does not exist")
    if not os.path.isfile(os.path.join(data_dir, "info.json")):
        if os.path.isfile(os.path.join(data_dir, "css_toy_dataset_novel2_small.dup.npy")):
            raise UserError(
                f"{data_dir} is a raw CSS download; convert it first: "
                f"python -m datasets.css.convert --raw_dir={data_dir} --out_dir={data_dir.rstrip('/')}_tfrecords"
            )
        raise UserError(f"--data_dir {data_dir} has no info.json: it is not a converted dataset directory")
    return data_dir


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
    """A uint8 RGB array from an image file, with a clear error for bad files."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise UserError(f"--image {path} does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"--image {path} is not a readable image ({e})") from None


def generate_captions() -> list[str] | None:
    """--text split on '|' into captions (None when not given)."""
    if FLAGS.text is None:
        return None
    captions = [c.strip() for c in FLAGS.text.split("|")]
    if not all(captions):
        raise UserError(f"--text has an empty caption: {FLAGS.text!r} (separate captions with '|')")
    return captions


def run_generate(task: Any, workdir: str, step: int) -> str:
    """--mode=generate: a PNG sheet of samples per caption (optionally SRCNN-upscaled); returns its path."""
    import numpy as np

    from t2i_tf.eval.sample_grid import captioned_grid

    if not hasattr(task, "generate"):
        raise UserError(f"--mode=generate is for text-to-image models, not --model={FLAGS.model}")
    num_samples = FLAGS.num_samples if FLAGS.num_samples is not None else 8
    extra = {}
    if FLAGS.image:
        if FLAGS.model != "stackgan_tirg":
            raise UserError(f"--image is for --model=stackgan_tirg (the source image to modify), not --model={FLAGS.model}")
        extra["source_image"] = load_image(FLAGS.image)
    out = task.generate(generate_captions(), num_samples, seed=FLAGS.seed, **extra)
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
                      "seed": FLAGS.seed}))
    return path


DEFAULT_CSS_CLASSIFIER = os.path.join("runs", "css_classifier")


def run_generator_eval(task: Any, workdir: str, step: int, config: dict[str, Any]) -> dict[str, float]:
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
    options = EvalOptions(num_images=FLAGS.eval_images, batch_size=int(config.get("eval_batch_size", 100)),
                          seed=FLAGS.seed, inception_graph=FLAGS.inception_graph, fid_model=FLAGS.fid_model,
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


def run() -> int:
    """Run the selected model and mode; returns a process exit code."""
    config_module, task_cls = lookup(FLAGS.model)
    if FLAGS.mode not in MODES:
        raise UserError(f"--mode must be one of {', '.join(MODES)}; got {FLAGS.mode!r}")
    config = resolve_config(config_module)
    if FLAGS.mode == "retrieve" and FLAGS.model != "tirg":
        raise UserError("--mode=retrieve is for --model=tirg")
    if FLAGS.mode == "retrieve" and (not FLAGS.image or FLAGS.text is None):
        raise UserError("--mode=retrieve needs --image=PATH and --text=\"...\"")
    if FLAGS.mode == "generate" and FLAGS.output is not None and not FLAGS.output.lower().endswith(".png"):
        raise UserError(f"--output must be a .png path; got {FLAGS.output!r}")
    from t2i_tf.train.strategy import make_strategy

    strategy = make_strategy(FLAGS.strategy)  # first: MultiWorkerMirroredStrategy must precede every TF op
    query_image = load_image(FLAGS.image) if FLAGS.mode == "retrieve" else None
    variant = config.get("composition") or (f"stage{config['stage']}" if "stage" in config
                                            else config.get("gan_type")) or ""
    workdir = FLAGS.workdir or os.path.join("runs", f"{FLAGS.model}_{variant}".rstrip("_"))
    saved = load_run_config(workdir, FLAGS.model)
    config = apply_saved_config(config, saved)
    if saved and FLAGS.data_dir is None and os.path.isdir(str(saved.get("data_dir"))):
        config["data_dir"] = saved["data_dir"]
    else:
        config["data_dir"] = resolve_data_dir(config, task_cls)

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
        steps_per_loop=FLAGS.steps_per_loop,
        jit_compile=FLAGS.jit_compile,
    )
    if FLAGS.mode == "train":
        metrics = trainer.fit()
        print_recall_table(metrics)
    elif FLAGS.mode == "eval" and hasattr(task, "generate_images"):
        step = trainer.restore()
        print_metric_lines(run_generator_eval(task, workdir, step, config))
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
        serve(path, host=FLAGS.host, port=FLAGS.port, gallery_dir=FLAGS.gallery_dir)
    return 0


def main(argv: list[str]) -> None:
    """absl entry point: user errors print one line and exit 2."""
    if len(argv) > 1:
        print(f"error: unexpected arguments {' '.join(argv[1:])} (flags look like --name=value)", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(run())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

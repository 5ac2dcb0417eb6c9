"""Benchmark: GAN-CLS train-step time (ms/step, images/s), input pipeline throughput and peak RSS.

Times the Trainer's own tf.function loop (one step = the D update(s), the G update and, for raw text,
the sentence-encoder update) on the embedded captioned CSS data, after a warm-up. ``--sizes`` picks the
image size; ``--paper_widths`` uses Reed's ngf=128 / ndf=64 / batch 64 instead of the CPU preset's.

    python bench/gan_cls_train_step.py --sizes=32,64 --steps=50
"""

from __future__ import annotations

import argparse

import common  # noqa: F401  (sets TF env vars and sys.path)

from configs import gan_cls as gan_config  # noqa: E402
from t2i_tf.datasets.css.captions import prepare_default_css_captions  # noqa: E402
from t2i_tf.tasks.gan_cls import GanClsTask  # noqa: E402


def time_steps(size: int, steps: int, paper_widths: bool, gan_type: str) -> dict:
    config = dict(gan_config.CPU, image_size=size, gan_type=gan_type, seed=0,
                  data_dir=prepare_default_css_captions(image_size=size))
    if paper_widths:
        config.update(ngf=128, ndf=64, proj_dim=128, batch_size=64)
    ms, pipeline_bps = common.time_train_steps(GanClsTask(config), steps)
    batch = config["batch_size"] * (config["diter"] if gan_type in ("wgan", "wgan_gp", "vanilla_wgan") else 1)
    return {
        "size": size,
        "gan_type": gan_type,
        "ngf/ndf": f"{config['ngf']}/{config['ndf']}",
        "batch": config["batch_size"],
        "ms/step": f"{ms:.1f}",
        "real images/s": f"{batch * 1000 / ms:.0f}",
        "pipeline batches/s": f"{pipeline_bps:.0f}",
        "trainer needs batches/s": f"{1000 / ms:.1f}",
        "peak RSS MiB": f"{common.peak_rss_mb():.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--gan_type", default="gan")
    parser.add_argument("--paper_widths", action="store_true")
    args = parser.parse_args()
    rows = [time_steps(int(s), args.steps, args.paper_widths, args.gan_type) for s in args.sizes.split(",")]
    common.print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()

"""Benchmark: TIRG train-step time (ms/step, images/s), input pipeline throughput and peak RSS.

Times exactly what the Trainer runs (its tf.function loop over the distributed
dataset) on the embedded generated CSS data, after a warm-up.

    python bench/tirg_train_step.py --presets=cpu,paper --steps=30
"""

from __future__ import annotations

import argparse

import common  # noqa: F401  (sets TF env vars and sys.path)

from configs import tirg as tirg_config  # noqa: E402
from t2i_tf.datasets.css.convert import prepare_default_css  # noqa: E402
from t2i_tf.tasks.tirg import TirgTask  # noqa: E402


def time_steps(preset: str, steps: int, jit: bool, data_dir: str) -> dict:
    config = dict(tirg_config.PRESETS[preset], data_dir=data_dir, seed=0)
    ms, pipeline_bps = common.time_train_steps(TirgTask(config), steps, jit)
    batch = config["batch_size"]
    return {
        "preset": preset,
        "model": f"w{config['image_width']} b{config['image_blocks']} {config['image_stem']}/{config['image_pool']}",
        "xla": jit,
        "batch": batch,
        "ms/step": f"{ms:.1f}",
        "images/s": f"{2 * batch * 1000 / ms:.0f}",
        "pipeline batches/s": f"{pipeline_bps:.0f}",
        "trainer needs batches/s": f"{1000 / ms:.1f}",
        "peak RSS MiB": f"{common.peak_rss_mb():.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="cpu,paper")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--xla", action="store_true", help="also time with jit_compile")
    args = parser.parse_args()
    data_dir = prepare_default_css()
    rows = []
    for preset in args.presets.split(","):
        for jit in ([False, True] if args.xla else [False]):
            rows.append(time_steps(preset, args.steps, jit, data_dir))
    common.print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()

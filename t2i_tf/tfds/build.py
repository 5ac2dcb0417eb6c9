"""``t2i-tf-tfds-build`` / ``python -m t2i_tf.tfds``: prepare one of the t2i_tf TFDS datasets from ``--manual_dir``
and print the prepared folder (a ``--data_dir`` for the trainers); :func:`prepared_dir` finds that folder from a
``tfds:NAME[/CONFIG][:VERSION][@TFDS_DATA_DIR]`` spec.

It does what ``tfds build NAME --imports=t2i_tf.tfds --manual_dir=... --data_dir=...`` does (the builder's
``download_and_prepare``); the ``tfds`` command of tensorflow-datasets 4.9.10 imports apache_beam and mlcroissant when
it starts, which this project does not install.

    python -m t2i_tf.tfds cub_captions[/CONFIG] --manual_dir=DIR [--data_dir=DIR] [--overwrite]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Sequence

from t2i_tf.errors import UserError


def prepare(name: str, manual_dir: str, data_dir: str | None = None, overwrite: bool = False) -> str:
    """Build ``name`` (``NAME`` or ``NAME/CONFIG``; ``NAME`` alone is the default config, or every config of a builder
    whose configs are parts of one dataset: ``css``) from ``manual_dir`` into ``data_dir``; returns the prepared
    folder (of the default config)."""
    import tensorflow_datasets as tfds

    from t2i_tf.tfds import BUILDERS

    builders = {b.name: b for b in BUILDERS}
    base, _, config = name.partition("/")
    if base not in builders:
        raise UserError(f"unknown dataset {name!r}: expected one of {', '.join(builders)} (optionally NAME/CONFIG)")
    configs = list(builders[base].builder_configs)
    if config and config not in configs:
        raise UserError(f"{base} has no config {config!r}: its configs are {', '.join(configs)}")
    if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
        raise UserError(f"--manual_dir {manual_dir} is {'empty' if os.path.isdir(manual_dir) else 'not a folder'}: "
                        f"put the files you downloaded there (python -c \"import t2i_tf.tfds as t; "
                        f"print(t.{builders[base].__name__}.MANUAL_DOWNLOAD_INSTRUCTIONS)\" says which)")
    mode = tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite else \
        tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
    download_config = tfds.download.DownloadConfig(manual_dir=manual_dir, download_mode=mode)
    names = [name]
    if not config and builders[base].PREPARE_ALL_CONFIGS:  # css: gallery and queries, both read by TIRG
        names = [f"{base}/{c}" for c in configs]
    folders = []
    for n in names:
        builder = tfds.builder(n, data_dir=data_dir)
        builder.download_and_prepare(download_config=download_config)
        folders.append(os.fspath(builder.data_dir))
    return folders[0]


SPEC_PREFIX = "tfds:"


def prepared_dir(spec: str) -> str:
    """The prepared folder named by ``tfds:NAME[/CONFIG][:VERSION][@TFDS_DATA_DIR]`` (default: TFDS's data dir), e.g.
    ``tfds:cub_captions/stackgan_embeddings@~/tensorflow_datasets``; a UserError naming the build command when that
    dataset is not prepared there."""
    import tensorflow_datasets as tfds

    from t2i_tf.tfds import BUILDERS

    if not spec.startswith(SPEC_PREFIX):
        raise UserError(f"{spec!r} is not a TFDS dataset: expected {SPEC_PREFIX}NAME[/CONFIG][:VERSION][@TFDS_DATA_DIR]")
    name, _, data_dir = spec[len(SPEC_PREFIX):].partition("@")
    base, _, config = name.split(":")[0].partition("/")
    builders = {b.name: b for b in BUILDERS}
    if base not in builders:
        raise UserError(f"{spec}: unknown dataset {base!r}: expected one of {', '.join(builders)}")
    if config and config not in builders[base].builder_configs:
        raise UserError(f"{spec}: {base} has no config {config!r}: its configs are "
                        f"{', '.join(builders[base].builder_configs)}")
    data_dir = os.path.expanduser(data_dir) if data_dir else None
    try:
        folder = os.fspath(tfds.builder(name, data_dir=data_dir).data_dir)
    except (ValueError, AssertionError) as e:  # e.g. a version the builder does not have (tfds asserts)
        raise UserError(f"{spec}: {str(e).splitlines()[0]}") from None
    if not os.path.isfile(os.path.join(folder, "info.json")):
        raise UserError(f"{spec}: not prepared in {folder}; prepare it with: t2i-tf-tfds-build {name} "
                        f"--manual_dir=DIR" + (f" --data_dir={data_dir}" if data_dir else ""))
    return folder


def prepared_specs(path: str) -> list[str]:
    """The ``tfds:`` specs of the t2i_tf datasets prepared in ``path`` taken as a TFDS data dir, as one dataset's
    folder in it (``DATA_DIR/NAME``) or as one config's (``DATA_DIR/NAME/CONFIG``): what to give as --data_dir
    instead of such a folder. A builder whose configs are parts of one dataset (css) is one spec, ``tfds:NAME@DIR``."""
    from t2i_tf.tfds import BUILDERS

    path = os.path.normpath(os.path.abspath(os.path.expanduser(path)))
    specs = []
    for b in BUILDERS:
        for root in dict.fromkeys((path, os.path.dirname(path), os.path.dirname(os.path.dirname(path)))):
            configs = [c for c in b.builder_configs
                       if path in (root, os.path.join(root, b.name), os.path.join(root, b.name, c))
                       and glob.glob(os.path.join(glob.escape(os.path.join(root, b.name, c)), "*", "info.json"))]
            if b.PREPARE_ALL_CONFIGS and configs:
                specs.append(f"{SPEC_PREFIX}{b.name}@{root}")
            else:
                specs += [f"{SPEC_PREFIX}{b.name}/{c}@{root}" for c in configs]
    return specs


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints a UserError on one line and exits non-zero."""
    p = argparse.ArgumentParser(prog="t2i-tf-tfds-build", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="cub_captions, flowers_captions, css, css_captions (optionally NAME/CONFIG)")
    p.add_argument("--manual_dir", required=True, help="the folder holding the files you downloaded")
    p.add_argument("--data_dir", default=None, help="TFDS data dir (default: TFDS's, ~/tensorflow_datasets)")
    p.add_argument("--overwrite", action="store_true", help="prepare again even if already prepared")
    a = p.parse_args(argv)
    try:
        path = prepare(a.name, a.manual_dir, a.data_dir, a.overwrite)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"prepared {a.name} in {path} (train with --data_dir={path})")
    return 0

"""Model families by name: each maps to its config module (configs/<name>.py) and its Task class.

Imports are lazy, so naming a model does not import every family's code.
"""

from __future__ import annotations

import importlib
from typing import Any

from t2i_tf.errors import UserError

# name -> (config module, "module:TaskClass")
_MODELS: dict[str, tuple[str, str]] = {
    "tirg": ("configs.tirg", "t2i_tf.tasks.tirg:TirgTask"),
    "gan_cls": ("configs.gan_cls", "t2i_tf.tasks.gan_cls:GanClsTask"),
    "stackgan": ("configs.stackgan", "t2i_tf.tasks.stackgan:StackGanTask"),
    "stackgan_tirg": ("configs.stackgan_tirg", "t2i_tf.tasks.stackgan_tirg:StackGanTirgTask"),
    "damsm": ("configs.damsm", "t2i_tf.tasks.damsm:DamsmTask"),
    "attngan": ("configs.attngan", "t2i_tf.tasks.attngan:AttnGanTask"),
    "srcnn": ("configs.srcnn", "t2i_tf.tasks.srcnn:SrcnnTask"),
    "css_classifier": ("configs.css_classifier", "t2i_tf.tasks.css_classifier:CssClassifierTask"),
    "sg2im": ("configs.sg2im", "t2i_tf.tasks.sg2im:Sg2ImTask"),
    "geneva": ("configs.geneva", "t2i_tf.tasks.geneva:GenevaTask"),
}


def model_names() -> tuple[str, ...]:
    """Every model family the command line knows."""
    return tuple(_MODELS)


def schema_of(name: str) -> Any:
    """The config schema of model family ``name`` (configs/<name>.py's SCHEMA)."""
    if name not in _MODELS:
        raise UserError(f"--model must be one of {', '.join(_MODELS)}; got {name!r}")
    return importlib.import_module(_MODELS[name][0]).SCHEMA


def lookup(name: str) -> tuple[Any, type]:
    """(config module, Task class) of model family ``name``; a UserError for an unknown name."""
    if name not in _MODELS:
        raise UserError(f"--model must be one of {', '.join(_MODELS)}; got {name!r}")
    config_path, task_path = _MODELS[name]
    module_name, class_name = task_path.split(":")
    return importlib.import_module(config_path), getattr(importlib.import_module(module_name), class_name)

"""The config machinery: typed fields, one schema per model, presets as overrides, validation in one place.

A model's schema is the set of keys its Task reads, each a :class:`Field` of ``configs/fields.py`` (type,
help, check); its ``paper`` preset gives every key a value and the other presets override some of them.
The absl flags of ``main.py`` are generated from these fields (t2i_tf/cli.py), and the Task validates its
config through :meth:`Schema.validate` when it is made, so a bad value is refused the same way from the
command line, a saved run or a test.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

from t2i_tf.errors import UserError

# Keys a run config may carry besides the model's fields: where the data is and which preset it came from.
META_KEYS = ("data_dir", "preset")


@dataclasses.dataclass(frozen=True)
class Check:
    """A condition on one value, with the words that name it in an error ("> 0")."""

    ok: Callable[[Any], bool]
    text: str


def positive() -> Check:
    return Check(lambda v: v > 0, "> 0")


def non_negative() -> Check:
    return Check(lambda v: v >= 0, ">= 0")


def at_least(low: float) -> Check:
    return Check(lambda v: v >= low, f">= {low}")


def in_range(low: float, high: float, high_open: bool = False) -> Check:
    """low <= v <= high (v < high with ``high_open``)."""
    if high_open:
        return Check(lambda v: low <= v < high, f"in [{low}, {high})")
    return Check(lambda v: low <= v <= high, f"in [{low}, {high}]")


def even_pairs() -> Check:
    return Check(lambda v: v >= 2 and v % 2 == 0, "even and >= 2 (batches are pairs)")


def odd_positive() -> Check:
    return Check(lambda v: v > 0 and v % 2 == 1, "odd and > 0 (a centred kernel for 'same' padding)")


def power_of_two(low: int) -> Check:
    return Check(lambda v: v >= low and v & (v - 1) == 0, f"a power of two >= {low}")


# Field.before when every run saved before the key existed behaved as the preset now says.
NEW_KEY_FOLLOWS_PRESET = object()


@dataclasses.dataclass(frozen=True)
class Field:
    """One setting: its Python type, what it is for, and the values it accepts.

    ``before``: the value a run saved before this key existed was trained with, for keys added later whose
    preset value differs from that behaviour (a saved config without the key is read with it).
    """

    type: type
    help: str
    choices: tuple[str, ...] = ()
    check: Check | None = None
    before: Any = NEW_KEY_FOLLOWS_PRESET

    def parse(self, name: str, value: Any) -> Any:
        """``value`` as this field's type, checked; a UserError naming ``--name`` otherwise."""
        try:
            if self.type is bool:
                if not isinstance(value, (bool, int)) or value not in (0, 1):
                    raise TypeError
                value = bool(value)
            elif self.type is int:
                if isinstance(value, (bool, str)) or (isinstance(value, float) and not value.is_integer()):
                    raise TypeError
                value = int(value)
            elif self.type is float:
                if isinstance(value, (bool, str)):
                    raise TypeError
                value = float(value)
                if not math.isfinite(value):
                    raise TypeError
            elif self.type is str:
                if not isinstance(value, str):
                    raise TypeError
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"--{name} must be a finite {self.type.__name__}; got {value!r}") from None
        if self.choices and value not in self.choices:
            raise UserError(f"--{name} must be one of {', '.join(self.choices)}; got {value!r}")
        if self.check is not None and not self.check.ok(value):
            raise UserError(f"--{name} must be {self.check.text}; got {value!r}")
        return value


class Schema:
    """The settings of one model: ``fields`` (name -> Field), the complete ``paper`` preset and the others as
    ``name -> (base preset, changes)``, in order."""

    def __init__(self, model: str, fields: Mapping[str, Field], paper: Mapping[str, Any],
                 overrides: Mapping[str, tuple[str, Mapping[str, Any]]], default_preset: str = "cpu"):
        missing, unknown = set(fields) - set(paper), set(paper) - set(fields)
        if missing or unknown:
            raise ValueError(f"configs/{model}.py: the paper preset must set exactly the schema's keys "
                             f"(missing {sorted(missing)}, unknown {sorted(unknown)})")
        self.model = model
        self.fields = dict(fields)
        self.presets: dict[str, dict[str, Any]] = {"paper": self.validate(dict(paper))}
        for name, (base, changes) in overrides.items():
            extra = set(changes) - set(fields)
            if extra:
                raise ValueError(f"configs/{model}.py: preset {name!r} sets keys the model does not read: {sorted(extra)}")
            self.presets[name] = self.validate(dict(self.presets[base], **changes))
        if default_preset not in self.presets:
            raise ValueError(f"configs/{model}.py: no preset {default_preset!r}")
        self.default_preset = default_preset

    def preset(self, name: str | None) -> dict[str, Any]:
        """A copy of preset ``name`` (None: the default) with ``preset`` recorded; a UserError for other names."""
        name = name or self.default_preset
        if name not in self.presets:
            raise UserError(f"--preset must be one of {', '.join(self.presets)}; got {name!r}")
        return dict(self.presets[name], preset=name)

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with every field parsed and checked; keys that are neither fields nor META_KEYS are refused."""
        out = dict(config)
        for key, value in config.items():
            if key in self.fields:
                out[key] = self.fields[key].parse(key, value)
            elif key not in META_KEYS:
                raise UserError(f"--model={self.model} has no setting {key!r} (its settings: {', '.join(sorted(self.fields))})")
        return out

    def only_own_keys(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The keys of ``config`` this model reads (its fields and META_KEYS): older run configs may hold more."""
        return {k: v for k, v in config.items() if k in self.fields or k in META_KEYS}

    def saved_run_keys(self, saved: Mapping[str, Any]) -> dict[str, Any]:
        """A saved run config's own keys, plus the ``before`` value of every field added after it was saved."""
        older = {k: f.before for k, f in self.fields.items()
                 if k not in saved and f.before is not NEW_KEY_FOLLOWS_PRESET}
        return dict(older, **self.only_own_keys(saved))

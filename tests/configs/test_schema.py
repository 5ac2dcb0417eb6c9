"""configs/: one typed schema per model, presets as overrides, validation in one place."""

import math

import pytest

from configs.fields import FIELDS, RUN_KEYS
from configs.schema import Field, Schema, even_pairs, in_range, positive
from t2i_tf.errors import UserError
from t2i_tf.registry import model_names, schema_of


def test_every_preset_of_every_model_is_valid_and_complete():
    for model in model_names():
        schema = schema_of(model)
        assert set(RUN_KEYS) <= set(schema.fields)
        for name, preset in schema.presets.items():
            assert set(preset) == set(schema.fields), (model, name)
            schema.validate(preset)
        assert schema.default_preset in schema.presets


def test_every_field_is_read_by_some_model():
    used = set().union(*(schema_of(m).fields for m in model_names()))
    assert set(FIELDS) == used


def test_a_preset_that_names_a_foreign_key_is_refused():
    fields = {"batch_size": FIELDS["batch_size"]}
    with pytest.raises(ValueError, match="gan_type"):
        Schema("toy", fields, {"batch_size": 2}, {"cpu": ("paper", {"gan_type": "wgan"})})
    with pytest.raises(ValueError, match="missing"):
        Schema("toy", {**fields, "seed": FIELDS["seed"]}, {"batch_size": 2}, {"cpu": ("paper", {})})


def test_presets_are_overrides_of_their_base():
    from configs import stackgan

    assert "beta1" not in stackgan.CPU_CHANGES and stackgan.CPU["beta1"] == stackgan.PAPER["beta1"]  # the paper's
    assert stackgan.TEST["dataset"] == stackgan.CPU["dataset"] != stackgan.PAPER["dataset"]  # test builds on cpu


@pytest.mark.parametrize("field, value, parsed", [
    (Field(int, "n"), 3.0, 3), (Field(float, "x"), 2, 2.0), (Field(bool, "b"), 1, True), (Field(str, "s"), "a", "a"),
])
def test_field_parses_its_type(field, value, parsed):
    out = field.parse("k", value)
    assert out == parsed and type(out) is type(parsed)


@pytest.mark.parametrize("field, value, message", [
    (Field(int, "n"), 2.5, "--k must be a finite int; got 2.5"),
    (Field(int, "n"), "7", "--k must be a finite int"),
    (Field(int, "n"), True, "--k must be a finite int"),
    (Field(float, "x"), math.nan, "--k must be a finite float"),
    (Field(float, "x"), math.inf, "--k must be a finite float"),
    (Field(bool, "b"), 2, "--k must be a finite bool"),
    (Field(str, "s", choices=("a", "b")), "c", "--k must be one of a, b; got 'c'"),
    (Field(int, "n", check=positive()), 0, "--k must be > 0; got 0"),
    (Field(int, "n", check=even_pairs()), 3, "--k must be even and >= 2"),
    (Field(float, "x", check=in_range(0.0, 1.0, high_open=True)), 1.0, r"--k must be in \[0.0, 1.0\); got 1.0"),
])
def test_field_refuses_bad_values_naming_the_flag(field, value, message):
    with pytest.raises(UserError, match=message):
        field.parse("k", value)


def test_validate_refuses_a_setting_the_model_does_not_read():
    schema = schema_of("stackgan")
    with pytest.raises(UserError, match="--model=stackgan has no setting 'minibatch_discrimination'"):
        schema.validate(dict(schema.presets["test"], minibatch_discrimination=True))


def test_only_own_keys_drops_what_an_older_version_saved():
    schema = schema_of("stackgan_tirg")
    old = dict(schema.presets["cpu"], text_encoder="auto", feature_matching=False, data_dir="/d", preset="cpu")
    kept = schema.only_own_keys(old)
    assert "text_encoder" not in kept and "feature_matching" not in kept and kept["data_dir"] == "/d"


def test_a_key_added_later_reads_an_older_run_as_it_was_trained():
    schema = schema_of("stackgan")
    assert schema.presets["cpu"]["stage2_residual"] is True  # the preset's value now ...
    old = {k: v for k, v in schema.presets["cpu"].items() if k != "stage2_residual"}
    assert schema.saved_run_keys(old)["stage2_residual"] is False  # ... but a run saved without the key had none
    assert schema.saved_run_keys(dict(old, stage2_residual=True))["stage2_residual"] is True
    assert "stage2_residual" not in schema_of("gan_cls").saved_run_keys({})  # only the model's own fields
    assert "ngf" not in schema.saved_run_keys({})  # fields without a `before` follow the preset


def test_tasks_validate_their_config_when_made():
    from configs import tirg
    from t2i_tf.tasks.tirg import TirgTask

    with pytest.raises(UserError, match="--batch_size must be even"):
        TirgTask(dict(tirg.TEST, batch_size=7))
    with pytest.raises(UserError, match="--model=tirg has no setting 'gan_type'"):
        TirgTask(dict(tirg.TEST, gan_type="wgan"))
    task = TirgTask(dict(tirg.TEST, learning_rate=1))  # an int where a float is meant is converted
    assert task.config["learning_rate"] == 1.0 and isinstance(task.config["learning_rate"], float)
    assert "data_dir" not in task.run_config() and task.run_config()["embed_dim"] == tirg.TEST["embed_dim"]

"""Presets: the recipe as shipped, and one clear line for every kind of bad input."""

from __future__ import annotations

import dataclasses

import pytest

from hwm_core.config.loading import config_from_toml_file, load_config
from hwm_core.config.presets import preset_names
from hwm_core.config.schema import Config
from hwm_core.errors import ConfigError
from tests.helpers import hwm, train_cli


def test_all_presets_load_and_validate():
    assert preset_names()[:5] == ["cpu", "12gb", "24gb", "48gb", "80gb"]
    for name in preset_names():
        assert load_config(name).preset == name


def test_12gb_is_the_recipe_exactly():
    c = load_config("12gb")
    assert (c.train.batch_size, c.train.grad_accum_steps) == (4, 4)
    assert c.train.lr == 5e-5
    assert (c.train.warmup_steps, c.train.max_steps, c.train.schedule) == (500, 60000, "cosine")
    assert c.train.max_grad_norm == 1.0
    assert (c.model.n_layers, c.model.d_model, c.model.n_heads) == (6, 192, 6)
    assert c.model.init_std == 0.02 and len(c.model.factor_groups) == 3
    assert (c.data.windows, c.data.future_latents) == (3, 3)  # 2 context windows + 1 future window
    assert c.train.precision == "bf16"


def test_48gb_is_the_papers_model():
    c = load_config("48gb")
    assert (c.model.n_layers, c.model.d_model, c.model.n_heads) == (24, 512, 8)
    assert (c.data.windows, c.data.future_latents, c.context_latents) == (1, 1, 2)
    assert (c.train.batch_size, c.train.lr) == (16, 3e-5)


def test_set_overrides_any_key_and_parses_types():
    c = load_config(
        "cpu",
        [
            "train.lr=1e-4",
            "model.factor_groups=[[0,1,2,3,4,5]]",
            "data.train=/some/dir",
            "model.condition_on_states=false",
            "train.max_steps=7",
            "train.warmup_steps=7",
        ],
    )
    assert c.train.lr == 1e-4
    assert c.model.factor_groups == [[0, 1, 2, 3, 4, 5]]
    assert c.data.train == "/some/dir"
    assert c.model.condition_on_states is False
    assert c.train.max_steps == 7


def test_resolved_config_round_trips_through_toml(tmp_path):
    c = load_config("12gb", ["train.lr=3e-5", 'data.train="a b"'])
    path = tmp_path / "config.toml"
    path.write_text(c.to_toml())
    back = config_from_toml_file(path)
    assert back.to_dict() == c.to_dict()


@pytest.mark.parametrize(
    "text, needle",
    [
        ("this is = = not toml", "is not valid TOML"),
        ("[optimizer]\nlr = 1.0\n", "unknown section or key 'optimizer'"),
        ("[train]\nlearning_rate = 1.0\n", "unknown key 'learning_rate' in [train]"),
        ('[train]\nbatch_size = "four"\n', "train.batch_size must be an integer"),
        ("[train]\nbatch_size = 0\n", "train.batch_size must be >= 1, got 0"),
        ("[train]\nbatch_size = -3\n", "train.batch_size must be >= 1, got -3"),
        ("[train]\nlr = true\n", "train.lr must be a number"),
        ("[train]\nwarmup_steps = 100\nmax_steps = 10\n", "train.warmup_steps (100) must be <= train.max_steps (10)"),
        ('[train]\nprecision = "fp8"\n', "train.precision must be one of bf16, fp32"),
        ("[model]\nfactor_groups = [[0, 1], [2, 3]]\n", "model.factor_groups must split the FSQ digits"),
        ("[model]\nd_model = 30\nn_heads = 4\n", "must be divisible by model.n_heads"),
        ("[data]\nwindows = 1\nfuture_latents = 3\n", "data.future_latents (3) must be < 3 * data.windows"),
        ("train = 3\n", "'train' must be a [train] table"),
    ],
)
def test_bad_preset_file_names_key_and_file(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    message = str(info.value)
    assert needle in message
    assert str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.lr", "write section.key=value"),
        ("lr=1", "the key needs its section"),
        ("optim.lr=1", "unknown section 'optim'"),
        ("train.speed=1", "unknown key 'speed' in [train]"),
        ("train.batch_size=2.5", "train.batch_size must be an integer"),
        ("train.batch_size=0", "must be >= 1"),
    ],
)
def test_bad_set_override(override, needle):
    with pytest.raises(ConfigError, match=None) as info:
        load_config("cpu", [override])
    assert needle in str(info.value)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        load_config("16gb")
    assert "unknown preset '16gb'" in str(info.value) and "12gb" in str(info.value)


def test_schema_defaults_are_the_12gb_recipe():
    """A key left out of a custom preset falls back to the recipe, not to something untested."""
    recipe = load_config("12gb")
    assert Config().train == recipe.train
    assert Config().model == recipe.model


def test_cli_bad_preset_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nbatch_size = 0\n")
    result = train_cli(tmp_path / "runs", preset=str(bad), tiny=False)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "train.batch_size must be >= 1" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing written for a run that never started


def test_cli_presets_list_and_show():
    listed = hwm("presets", "list")
    assert listed.returncode == 0
    for name in ("cpu", "12gb", "24gb", "48gb", "80gb"):
        assert name in listed.stdout
    shown = hwm("presets", "show", "12gb")
    assert shown.returncode == 0
    assert "lr = 5e-05" in shown.stdout and "grad_accum_steps = 4" in shown.stdout


def test_presets_show_schema_lists_every_key_with_its_type_default_bounds_and_doc():
    from hwm_core.config.schema import SECTIONS, describe_schema

    rows = {row.key: row for row in describe_schema()}
    assert len(rows) == sum(len(dataclasses.fields(cls)) for cls in SECTIONS.values())
    assert (rows["train.lr"].type, rows["train.lr"].default, rows["train.lr"].allowed) == ("float", 5e-5, "> 0")
    assert rows["train.batch_size"].allowed == ">= 1, auto"
    assert rows["model.dropout"].allowed == ">= 0, < 1"
    assert rows["model.factor_groups"].default == [[0, 3], [1, 4], [2, 5]]
    shown = hwm("presets", "show", "cpu", "--schema")
    assert shown.returncode == 0, shown.stderr
    lines = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if line.count("│") > 2}
    assert set(rows) <= set(lines)
    cells = [cell.strip() for cell in lines["model.d_model"].split("│")[1:-1]]
    assert cells == ["model.d_model", "int", "192", ">= 8", "64", "width of every token's hidden state"]
    missing = hwm("presets", "show")  # without --schema a preset must be named, as before
    assert missing.returncode == 2 and "Missing argument" in missing.stderr

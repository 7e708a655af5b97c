"""A config checks itself: every section, however it is built (code, replace, a preset, --set),
checks its keys against their real annotations and its own rules, with the lines users read."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from hwm_core.config.fields import choices, field_types
from hwm_core.config.loading import load_config, with_overrides
from hwm_core.config.schema import (
    COMPILE_CHOICES,
    RESUME_SAFE_KEYS,
    Config,
    ExpectedConfig,
    LogConfig,
    ModelConfig,
    TrainConfig,
)
from hwm_core.errors import ConfigError


@pytest.mark.parametrize(
    ("build", "line"),
    [
        (lambda: ModelConfig(d_model=30, n_heads=4), "model.d_model (30) must be divisible by model.n_heads (4)"),
        (lambda: ModelConfig(factor_groups=[[0, 1]]), "model.factor_groups must split the FSQ digits 0..5"),
        (lambda: TrainConfig(device="gpu"), "train.device must be one of auto, cpu, cuda, got 'gpu'"),  # type: ignore[arg-type]
        (lambda: TrainConfig(lr="x"), "train.lr must be a number, got 'x'"),  # type: ignore[arg-type]
        (lambda: TrainConfig(lr=0.0), "train.lr must be > 0, got 0.0"),
        (lambda: TrainConfig(batch_size="big"), "train.batch_size must be an integer or auto, got 'big'"),  # type: ignore[arg-type]
        (
            lambda: dataclasses.replace(TrainConfig(), warmup_steps=10, max_steps=5),
            "train.warmup_steps (10) must be <=",
        ),
        (
            lambda: ExpectedConfig(steps=[0, 10], loss_low=[1.0], loss_high=[2.0]),
            "expected.steps, expected.loss_low and expected.loss_high must be as long as each other",
        ),
        (lambda: LogConfig(mirrors=["mlflow"]), "log.mirrors must list each of tensorboard, wandb at most once"),
        (lambda: Config(memory_budget_gib=-1), "'memory_budget_gib' must be a number >= 0"),
    ],
)
def test_a_section_built_in_code_checks_itself(build, line):
    with pytest.raises(ConfigError) as caught:
        build()
    assert str(caught.value).startswith(line)


def test_a_number_key_takes_an_int_as_the_float_it_is():
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


def test_field_types_are_the_real_annotations():
    assert field_types(ModelConfig)["factor_groups"] == list[list[int]]
    assert field_types(ModelConfig)["positions"] == Literal["learned", "rope"]
    assert (
        choices(field_types(TrainConfig)["compile"])
        == COMPILE_CHOICES
        == ("off", "on", "reduce-overhead", "max-autotune")
    )
    assert choices(field_types(TrainConfig)["batch_size"]) == ("auto",)


def test_resume_safety_is_each_fields_spec():
    # the keys a resumed run may change: an interface (resume's error line lists them)
    assert {
        *(f"train.{k}" for k in ("max_steps", "device", "max_nonfinite_steps", "compile", "batch_size")),
        *(f"train.{k}" for k in ("grad_accum_steps", "effective_batch", "memory_limit_gib", "lr", "warmup_steps")),
        "train.max_grad_norm",
        *(f"eval.{k}" for k in ("eval_steps", "sample_count", "maskgit_steps")),
        "checkpoint.save_steps",
        "checkpoint.keep_checkpoints",
        *(f"health.{k}" for k in ("instability_norm", "vanishing_norm", "divergence_guard")),
        "health.divergence_smoothing",
        "health.val_rises",
        "data.train",
        "data.val",
        *(f"expected.{k}" for k in ("data", "steps", "loss_low", "loss_high", "grad_norm_low", "grad_norm_high")),
        "expected.layout",
        "log.mirrors",
        "log.wandb_project",
    } == RESUME_SAFE_KEYS
    assert not any(key.startswith(("model.", "masking.")) for key in RESUME_SAFE_KEYS)


def test_overrides_give_a_new_checked_config_and_leave_the_old_one_as_it_was():
    config = load_config("cpu")
    before = config.to_dict()
    changed_config, changed = with_overrides(config, ["train.lr=1e-3", "train.batch_size=auto", "train.lr=3e-3"])
    assert config.to_dict() == before
    assert changed_config.train.lr == 3e-3 and changed == ["train.lr", "train.batch_size"]
    # auto keeps the preset's effective batch
    assert changed_config.train.effective_batch == config.train.batch_size * config.train.grad_accum_steps
    with pytest.raises(ConfigError, match=r"^--set: train.lr must be a number, got 'x'$"):
        with_overrides(config, ["train.lr=x"])
    with pytest.raises(ConfigError, match=r"with --set.*: model.d_model \(30\) must be divisible"):
        load_config("cpu", ["model.d_model=30", "model.positions=learned", "model.n_heads=4"])

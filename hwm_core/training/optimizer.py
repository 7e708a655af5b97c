"""The optimizer of the recipe: AdamW, weight decay on the weight matrices of linear layers only."""

from __future__ import annotations

import torch

from ..config.schema import TrainConfig


def build_optimizer(model: torch.nn.Module, train: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # Decay on embeddings, positions, norms and biases only shrinks what is rarely updated.
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            (decay if isinstance(module, torch.nn.Linear) and name == "weight" else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The learning rate is set every step from the schedule; 0 until the first one.
    return torch.optim.AdamW(
        groups, lr=0.0, betas=(train.beta1, train.beta2), eps=train.eps, fused=device.type == "cuda"
    )

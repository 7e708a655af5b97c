"""Masked-HWM: a spatio-temporal masked transformer over Cosmos latent tokens.

The whole forward path is in this file, top to bottom:
factor embeddings (summed) + positions + embedded robot states
-> blocks of spatial attention, temporal attention, MLP
-> per-factor heads on the masked target positions only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .data.split import LATENT_FRAME_GROUPS, FRAMES_PER_WINDOW, STATE_DIM, TOKENS_SIDE
from .fsq import FactorSpec

SPATIAL_POSITIONS = TOKENS_SIDE * TOKENS_SIDE
LINEAR_INIT_STD = 0.02


class Attention(nn.Module):
    """Multi-head self-attention over the second axis of [N, L, D]."""

    def __init__(self, d_model: int, n_heads: int, *, causal: bool, dropout: float):
        super().__init__()
        self.n_heads, self.causal, self.dropout = n_heads, causal, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(n, length, d))


class MLP(nn.Module):
    def __init__(self, d_model: int, ratio: float, dropout: float):
        super().__init__()
        hidden = int(round(d_model * ratio))
        self.fc = nn.Linear(d_model, hidden)
        self.proj = nn.Linear(hidden, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm: spatial attention within a latent frame, temporal attention across
    latent frames at each position (causal: a frame never sees later ones), MLP."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.norm_spatial = nn.LayerNorm(d)
        self.spatial = Attention(d, cfg.n_heads, causal=False, dropout=cfg.dropout)
        self.norm_temporal = nn.LayerNorm(d)
        self.temporal = Attention(d, cfg.n_heads, causal=True, dropout=cfg.dropout)
        self.norm_mlp = nn.LayerNorm(d)
        self.mlp = MLP(d, cfg.mlp_ratio, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, s, d = x.shape
        h = x.reshape(b * t, s, d)
        h = h + self.dropout(self.spatial(self.norm_spatial(h)))
        h = h.view(b, t, s, d).transpose(1, 2).reshape(b * s, t, d)
        h = h + self.dropout(self.temporal(self.norm_temporal(h)))
        h = h.view(b, s, t, d).transpose(1, 2)
        return h + self.mlp(self.norm_mlp(h))


def latent_pooling(latent_frames: int) -> torch.Tensor:
    """[T, 17*W] weights that average each latent frame's video frames."""
    windows = latent_frames // 3
    pool = torch.zeros(latent_frames, windows * FRAMES_PER_WINDOW)
    for w in range(windows):
        for j, (start, end) in enumerate(LATENT_FRAME_GROUPS):
            pool[3 * w + j, w * FRAMES_PER_WINDOW + start: w * FRAMES_PER_WINDOW + end] = 1.0 / (end - start)
    return pool


class MaskedHWM(nn.Module):
    def __init__(self, cfg: ModelConfig, latent_frames: int):
        super().__init__()
        self.cfg = cfg
        self.latent_frames = latent_frames
        self.factors = FactorSpec(cfg.factor_groups)
        d = cfg.d_model
        # One extra row per factor table: the mask token.
        self.factor_embeddings = nn.ModuleList(nn.Embedding(size + 1, d) for size in self.factors.sizes)
        self.spatial_position = nn.Parameter(torch.zeros(SPATIAL_POSITIONS, d))
        self.temporal_position = nn.Parameter(torch.zeros(latent_frames, d))
        # Only built when used: DDP refuses parameters that never get a gradient.
        self.state_embedding = (nn.Sequential(nn.Linear(STATE_DIM, d), nn.GELU(), nn.Linear(d, d))
                                if cfg.condition_on_states else None)
        self.register_buffer("state_pooling", latent_pooling(latent_frames), persistent=False)
        # Layers from shared_from on all run the block at index shared_from.
        unique = min(cfg.n_layers, cfg.shared_from + 1)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(unique))
        self.layer_blocks = [min(i, cfg.shared_from) for i in range(cfg.n_layers)]
        self.norm_out = nn.LayerNorm(d)
        self.heads = nn.ModuleList(nn.Linear(d, size) for size in self.factors.sizes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=LINEAR_INIT_STD)
                nn.init.zeros_(module.bias)
        # Residual projections shrink with depth so the residual stream keeps its scale (GPT-2).
        for block in self.blocks:
            for proj in (block.spatial.proj, block.temporal.proj, block.mlp.proj):
                nn.init.normal_(proj.weight, std=LINEAR_INIT_STD / math.sqrt(3 * self.cfg.n_layers))
        # The token embedding is a sum of F factors: each N(0, (init_std/√F)²) keeps the sum at init_std².
        factor_std = self.cfg.init_std / math.sqrt(self.factors.num_factors)
        for table in self.factor_embeddings:
            nn.init.normal_(table.weight, std=factor_std)
        nn.init.normal_(self.spatial_position, std=self.cfg.init_std)
        nn.init.normal_(self.temporal_position, std=self.cfg.init_std)
        # Logit scale init_std at any width, so the first loss is the random-guess loss ln(64000).
        for head in self.heads:
            nn.init.normal_(head.weight, std=self.cfg.init_std / math.sqrt(self.cfg.d_model))

    def embed_tokens(self, factor_ids: torch.Tensor) -> torch.Tensor:
        """[..., F] factor ids (mask id where masked) -> [..., D], the sum over factors."""
        return sum(table(factor_ids[..., f]) for f, table in enumerate(self.factor_embeddings))

    def forward(self, factor_ids: torch.Tensor, states: torch.Tensor,
                target_index: torch.Tensor) -> list[torch.Tensor]:
        """factor_ids [B, T, S, F]; states [B, 17*W, 25] normalised; target_index [M]
        flat indices into B*T*S of the masked target tokens. Returns per factor
        logits [M, size]."""
        b, t, s, _ = factor_ids.shape
        x = self.embed_tokens(factor_ids)
        x = x + self.spatial_position[None, None] + self.temporal_position[None, :, None]
        if self.state_embedding is not None:
            per_frame = self.state_embedding(states)                       # [B, 17W, D]
            per_latent = torch.einsum("tf,bfd->btd", self.state_pooling.to(per_frame.dtype), per_frame)
            x = x + per_latent[:, :, None, :]
        for block_index in self.layer_blocks:
            x = self.blocks[block_index](x)
        # Gather first: the heads only ever see masked target positions.
        hidden = x.reshape(b * t * s, -1).index_select(0, target_index)
        hidden = self.norm_out(hidden)
        return [head(hidden) for head in self.heads]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def masked_token_loss(logits: list[torch.Tensor], targets: torch.Tensor, sample_ids: torch.Tensor,
                      num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample mean over its masked tokens of Σ_factors cross-entropy.

    Averaging per sample (not per micro-batch) makes the loss of a step the same
    however its samples are split into micro-batches or ranks.
    Returns (per-sample loss [num_samples], per-token all-factors-correct [M]).
    """
    token_loss = torch.zeros(targets.shape[0], device=targets.device, dtype=torch.float32)
    correct = torch.ones(targets.shape[0], device=targets.device, dtype=torch.bool)
    for f, factor_logits in enumerate(logits):
        factor_logits = factor_logits.float()
        token_loss = token_loss + F.cross_entropy(factor_logits, targets[:, f], reduction="none")
        correct &= factor_logits.argmax(dim=-1) == targets[:, f]
    counts = torch.zeros(num_samples, device=targets.device).index_add_(
        0, sample_ids, torch.ones_like(token_loss))
    sums = torch.zeros(num_samples, device=targets.device).index_add_(0, sample_ids, token_loss)
    return sums / counts.clamp_min(1), correct

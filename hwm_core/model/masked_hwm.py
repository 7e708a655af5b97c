"""Masked-HWM: a spatio-temporal masked transformer over Cosmos latent tokens.

The whole forward path is in this file, top to bottom:
factor embeddings (summed) + positions + embedded robot states
-> blocks of spatial attention, temporal attention, MLP
-> per-factor heads on every position of the target latent frames; the loss
   counts the masked ones. Every tensor has the same shape at every step, so a
   step compiles once and can be captured in a CUDA graph.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ..config.schema import ModelConfig
from ..data.split import FRAMES_PER_WINDOW, LATENT_FRAME_GROUPS, STATE_DIM, TOKENS_SIDE
from ..fsq import FactorSpec
from ..runtime.device import autocast

SPATIAL_POSITIONS = TOKENS_SIDE * TOKENS_SIDE
LINEAR_INIT_STD = 0.02


ROPE_BASE = 32.0  # slowest turn about a frame's width: positions run 0..31


def rotary_tables(positions: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Axial RoPE: [L, A] integer positions -> [2, L, head_dim], the cos and sin by which
    each query and key dimension turns. Dimension i pairs with i + head_dim/2 (the
    rotate-half form); the pairs are shared out over the A axes (rows and columns, or
    time), and pair k of an axis turns by position x ROPE_BASE^(-k/pairs)."""
    axes = positions.shape[1]
    pairs = head_dim // 2 // axes
    speeds = ROPE_BASE ** (-torch.arange(pairs, dtype=torch.float32) / pairs)
    angles = torch.cat([positions[:, a : a + 1].float() * speeds for a in range(axes)], dim=1)  # [L, head_dim/2]
    angles = torch.cat([angles, angles], dim=1)
    return torch.stack([angles.cos(), angles.sin()])


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [..., head_dim] turned: x cos + rotate_half(x) sin (cos, sin broadcast to x).
    rotate_half(x) = (-second, first); the sign goes on the small table instead of on x
    (one pass over the activations fewer, forward and backward; a negation is exact, so
    the result is bitwise the same)."""
    first, second = x.chunk(2, dim=-1)
    sin_first, sin_second = sin.chunk(2, dim=-1)
    return x * cos + torch.cat((second, first), dim=-1) * torch.cat((-sin_first, sin_second), dim=-1)


# The flash and memory-efficient SDPA kernels put the batch on a CUDA grid axis of at
# most 65,535 blocks; past it a launch fails with "invalid configuration argument".
# Temporal attention hands SDPA micro-batch x 1,024 sequences, so from 64 samples on it
# would fail on a GPU (only a GPU shows the error; the CPU kernels have no such cap).
SDPA_MAX_BATCH = 65_535


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, dropout_p: float, max_batch: int | None = None
) -> torch.Tensor:
    """scaled_dot_product_attention over [N, H, L, hd], in calls of at most `max_batch`
    sequences each: the same result (each sequence attends only within itself), with
    every launch's grid within CUDA's limit. The split is static (N is fixed in a run),
    so a compiled step still compiles once. `max_batch`: SDPA_MAX_BATCH unless given."""
    n, max_batch = q.shape[0], max_batch or SDPA_MAX_BATCH
    if n <= max_batch:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=dropout_p)
    return torch.cat(
        [
            F.scaled_dot_product_attention(
                q[i : i + max_batch], k[i : i + max_batch], v[i : i + max_batch], is_causal=causal, dropout_p=dropout_p
            )
            for i in range(0, n, max_batch)
        ]
    )


class Attention(nn.Module):
    """Multi-head self-attention over the second axis of [N, L, D]; with `rope` tables,
    queries and keys are turned by their positions (RoPE), so a head sees offsets."""

    def __init__(self, d_model: int, n_heads: int, *, causal: bool, dropout: float):
        super().__init__()
        self.n_heads, self.causal, self.dropout = n_heads, causal, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, rope: torch.Tensor | None = None) -> torch.Tensor:
        n, length, d = x.shape
        qkv = self.qkv(x).view(n, length, 3, self.n_heads, d // self.n_heads)
        if rope is not None:
            # queries and keys in one go, before they are split: [N, L, 2, H, hd] by [L, 1, 1, hd];
            # the tables in q/k's dtype (bf16 under autocast, where x is still fp32): fp32 tables
            # would promote q and k to fp32 and take SDPA off its bf16 kernels
            cos, sin = rope.to(qkv.dtype)[:, :, None, None, :]
            # SDPA takes the values as a view: no copy of all three joined again
            q, k = rotate(qkv[:, :, :2], cos, sin).permute(2, 0, 3, 1, 4)
            v = qkv[:, :, 2].transpose(1, 2)
        else:
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
        y = attention(q, k, v, causal=self.causal, dropout_p=self.dropout if self.training else 0.0)
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


class PreviousFrameAttention(nn.Module):
    """Every token of latent frame t attends to all positions of frame t-1 (frame 0, with
    none before it, to itself), with the same 2D rotary offsets as spatial attention.
    A frame the robot's motion shifted is then one attention away from the frame before
    it: a query made from a masked token and its frame's states can pick "the token
    (dy, dx) away" in the previous frame, which spatial-then-temporal attention reaches
    only in two layers and through a query blurred by content. (Leaving frame 0 out
    saves a third of this attention's work; measured, the model then learned the shift
    later: 13% against 27% val accuracy at step 400 of the cpu preset, so it stays.)
    With `window` (model.previous_frame_window) a token attends only to the previous
    frame's tokens around it (PreviousFrameTiles): measured on the cpu preset, the shift
    is then found sooner (51% against 27% val accuracy at step 400)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, window: int = 0):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        # a window as wide as the frame is the whole frame: one attention, not 64 of it
        self.tiles = PreviousFrameTiles(window) if window and tile_keys_side(window) < TOKENS_SIDE else None

    def forward(self, x: torch.Tensor, rope: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, S, D] -> [B, T, S, D]."""
        b, t, s, d = x.shape
        hd = d // self.n_heads
        previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)
        q = self.q(x).reshape(b * t, s, self.n_heads, hd)
        kv = self.kv(previous).reshape(b * t, s, 2, self.n_heads, hd)
        k, v = kv[:, :, 0], kv[:, :, 1]
        if rope is not None:
            cos, sin = rope.to(q.dtype)[:, :, None, :]  # in q/k's dtype, as in Attention
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        dropout_p = self.dropout if self.training else 0.0
        if self.tiles is None:
            y = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=False, dropout_p=dropout_p)
            y = y.transpose(1, 2)
        else:
            y = self.tiles.attend(q, k, v, dropout_p=dropout_p)
        return self.proj(y.reshape(b, t, s, d))


def tile_keys_side(radius: int) -> int:
    """The side of the square of previous-frame keys a tile of queries attends to."""
    return min(PreviousFrameTiles.TILE + 2 * radius, TOKENS_SIDE)


class PreviousFrameTiles(nn.Module):
    """Previous-frame attention restricted to a neighbourhood (model.previous_frame_window
    = R): the frame is cut into tiles of TILE x TILE queries, and each tile attends to the
    (TILE + 2R)^2 tokens of the previous frame around it, moved inward at the frame's edges
    so every key is a real token. Every query sees at least the offsets -R..R in rows and
    columns (more the nearer it sits to its tile's middle); rotary offsets still tell them
    apart. It is plain SDPA on tiles (no mask, so the fast kernels), and costs
    (TILE + 2R)^2 keys a query instead of the whole frame's 1,024.

    Queries, keys and values reach their tiles by one `index_select` each over the frame's
    positions (whole rows of the [N * S, H * hd] view), in the order the tiles need them (no
    permuted copy after it), and the output goes back by one more; each one's backward is an
    `index_add`. (Measured on the cpu preset: one advanced index over rows and columns, whose
    backward zero-fills and `index_put`s the whole [tiles, width^2] gradient, made these
    tiles a third of the step.)"""

    TILE = 4

    # buffers, so they move with the model and no step copies them to the GPU (a copy CUDA
    # graphs could not capture); not persistent: derived from the radius alone
    rows: torch.Tensor
    key_positions: torch.Tensor
    query_positions: torch.Tensor
    query_order: torch.Tensor

    def __init__(self, radius: int):
        super().__init__()
        side, tile = TOKENS_SIDE, self.TILE
        self.width = tile_keys_side(radius)
        starts = (torch.arange(side // tile) * tile - radius).clamp(0, side - self.width)
        rows = starts[:, None] + torch.arange(self.width)  # [tiles a side, width]: each tile's key rows (and columns)
        self.register_buffer("rows", rows, persistent=False)
        # [tiles, width^2] frame positions: tile (ty, tx) row-major, its keys row-major
        keys = rows[:, None, :, None] * side + rows[None, :, None, :]
        self.register_buffer("key_positions", keys.flatten(), persistent=False)
        # [S]: the queries tile by tile (ty, tx, then the tile's own rows and columns), and back
        within = torch.arange(tile)
        corner = torch.arange(side // tile) * tile
        queries = (corner[:, None, None, None] + within[None, None, :, None]) * side + (
            corner[None, :, None, None] + within[None, None, None, :]
        )
        self.register_buffer("query_positions", queries.flatten(), persistent=False)
        self.register_buffer("query_order", torch.argsort(queries.flatten()), persistent=False)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, dropout_p: float) -> torch.Tensor:
        """q, k, v [N, S, H, hd] (S = TOKENS_SIDE^2, row-major; views will do) -> [N, S, H, hd]."""
        n, s, h, hd = q.shape
        tiles, per_tile, keys = (TOKENS_SIDE // self.TILE) ** 2, self.TILE**2, self.width**2
        # Each gather takes whole rows (a token's H x hd values) of the [N * S, H * hd] view:
        # a copy of contiguous rows, and a backward that adds rows back, both cheaper than the
        # same gather along dim 1 (the same values, and bitwise the same gradients).
        first_rows = torch.arange(n, device=q.device)[:, None] * s
        key_rows = (first_rows + self.key_positions).flatten()  # once, for the keys and the values

        def rows_of(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return x.reshape(n * s, h * hd).index_select(0, rows)

        def gathered(x: torch.Tensor, rows: torch.Tensor, length: int) -> torch.Tensor:
            # [N, S, H, hd] -> [N * tiles, H, length, hd]: SDPA's layout, as a view of the gather
            return rows_of(x, rows).view(n * tiles, length, h, hd).transpose(1, 2)

        y = attention(
            gathered(q, (first_rows + self.query_positions).flatten(), per_tile),
            gathered(k, key_rows, keys),
            gathered(v, key_rows, keys),
            causal=False,
            dropout_p=dropout_p,
        )  # [N * tiles, H, per_tile, hd]
        return rows_of(y.transpose(1, 2), (first_rows + self.query_order).flatten()).view(n, s, h, hd)


class Block(nn.Module):
    """Pre-norm: spatial attention within a latent frame, (optionally) attention to the
    frame before, temporal attention across latent frames at each position (causal: a
    frame never sees later ones), MLP. With FiLM, each norm's output is shifted and
    scaled by its latent frame's embedded states (zero at init: the plain block)."""

    def __init__(self, cfg: ModelConfig, index: int = 0):
        super().__init__()
        d = cfg.d_model
        self.norm_spatial = nn.LayerNorm(d)
        self.spatial = Attention(d, cfg.n_heads, causal=False, dropout=cfg.dropout)
        self.previous: PreviousFrameAttention | None = None
        if index >= cfg.n_layers - cfg.previous_frame_layers:
            self.norm_previous = nn.LayerNorm(d)
            self.previous = PreviousFrameAttention(d, cfg.n_heads, cfg.dropout, cfg.previous_frame_window)
        self.norm_temporal = nn.LayerNorm(d)
        self.temporal = Attention(d, cfg.n_heads, causal=True, dropout=cfg.dropout)
        self.norm_mlp = nn.LayerNorm(d)
        self.mlp = MLP(d, cfg.mlp_ratio, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.norms = 4 if self.previous is not None else 3
        film = cfg.state_conditioning == "film" and cfg.condition_on_states
        self.film = nn.Linear(d, 2 * self.norms * d) if film else None

    def forward(
        self,
        x: torch.Tensor,
        spatial_rope: torch.Tensor | None = None,
        temporal_rope: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x [B, T, S, D]; cond [B, T, D]: each latent frame's embedded states (FiLM)."""
        b, t, s, d = x.shape
        modulation = None
        if self.film is not None and cond is not None:
            # [B, T, 1, D] shifts and scales, one pair a norm
            modulation = self.film(F.silu(cond))[:, :, None, :].chunk(2 * self.norms, dim=-1)

        def norm(layer: nn.LayerNorm, h: torch.Tensor, which: int) -> torch.Tensor:
            out = layer(h)
            if modulation is None:
                return out
            return out * (1 + modulation[2 * which + 1]) + modulation[2 * which]

        spatial = self.spatial(norm(self.norm_spatial, x, 0).reshape(b * t, s, d), spatial_rope)
        x = x + self.dropout(spatial.view(b, t, s, d))
        which = 1
        if self.previous is not None:
            x = x + self.dropout(self.previous(norm(self.norm_previous, x, which), spatial_rope))
            which += 1
        h = norm(self.norm_temporal, x, which).transpose(1, 2).reshape(b * s, t, d)
        temporal = self.temporal(h, temporal_rope).view(b, s, t, d).transpose(1, 2)
        x = x + self.dropout(temporal)
        return x + self.mlp(norm(self.norm_mlp, x, which + 1))


def latent_pooling(latent_frames: int) -> torch.Tensor:
    """[T, 17*W] weights that average each latent frame's video frames."""
    windows = latent_frames // 3
    pool = torch.zeros(latent_frames, windows * FRAMES_PER_WINDOW)
    for w in range(windows):
        for j, (start, end) in enumerate(LATENT_FRAME_GROUPS):
            pool[3 * w + j, w * FRAMES_PER_WINDOW + start : w * FRAMES_PER_WINDOW + end] = 1.0 / (end - start)
    return pool


class MaskedHWM(nn.Module):
    # buffers, typed (register_buffer leaves them Tensor | Module to a checker)
    spatial_rope: torch.Tensor
    temporal_rope: torch.Tensor
    state_pooling: torch.Tensor

    def __init__(self, cfg: ModelConfig, latent_frames: int):
        super().__init__()
        self.cfg = cfg
        self.latent_frames = latent_frames
        self.factors = FactorSpec(cfg.factor_groups)
        d = cfg.d_model
        # One extra row per factor table: the mask token.
        self.factor_embeddings = nn.ModuleList(nn.Embedding(size + 1, d) for size in self.factors.sizes)
        self.rope = cfg.positions == "rope"
        if self.rope:
            # Positions turn queries and keys in attention instead (rotary): a head can
            # attend to "the token one to the left", which learned embeddings learn slowly.
            rows, cols = torch.meshgrid(torch.arange(TOKENS_SIDE), torch.arange(TOKENS_SIDE), indexing="ij")
            head_dim = d // cfg.n_heads
            self.register_buffer(
                "spatial_rope", rotary_tables(torch.stack([rows, cols], -1).view(-1, 2), head_dim), persistent=False
            )
            self.register_buffer(
                "temporal_rope", rotary_tables(torch.arange(latent_frames)[:, None], head_dim), persistent=False
            )
        else:
            self.spatial_position = nn.Parameter(torch.zeros(SPATIAL_POSITIONS, d))
            self.temporal_position = nn.Parameter(torch.zeros(latent_frames, d))
        # Only built when used: DDP refuses parameters that never get a gradient.
        self.state_embedding = (
            nn.Sequential(nn.Linear(STATE_DIM, d), nn.GELU(), nn.Linear(d, d)) if cfg.condition_on_states else None
        )
        self.register_buffer("state_pooling", latent_pooling(latent_frames), persistent=False)
        # Frame 0 of a window is one video frame past the grid before, its other two grids
        # eight: the same states then mean a shift 8x as large (see ModelConfig.window_slots).
        self.window_slot = nn.Embedding(len(LATENT_FRAME_GROUPS), d) if cfg.window_slots else None
        # Layers from shared_from on all run the block at index shared_from.
        unique = min(cfg.n_layers, cfg.shared_from + 1)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(unique))
        self.block_list: list[Block] = [b for b in self.blocks if isinstance(b, Block)]  # the same, typed
        self.layer_blocks = [min(i, cfg.shared_from) for i in range(cfg.n_layers)]
        self.norm_out = nn.LayerNorm(d)
        # Tied (cfg.tied_heads): a factor's head is its embedding table, only a bias of its own
        # (a head weight left unused would get no gradient, which DDP refuses).
        self.heads = nn.ModuleList(() if cfg.tied_heads else (nn.Linear(d, size) for size in self.factors.sizes))
        self.head_biases = nn.ParameterList(
            nn.Parameter(torch.zeros(size)) for size in (self.factors.sizes if cfg.tied_heads else ())
        )
        # Copy gate (cfg.copy_gate): per factor, how much a target token's logits favour the code
        # its position held in the grid before (a mask there: nothing), where a window opens.
        # Shut at the start, so a new model's first loss is still ln(64000); started open
        # (a score of 3 for every token) it ended 1-5 points lower on every grid by step 900.
        self.copy_gate = nn.Linear(d, self.factors.num_factors) if cfg.copy_gate else None
        self._init_weights()
        if self.copy_gate is not None:
            nn.init.zeros_(self.copy_gate.weight)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=LINEAR_INIT_STD)
                nn.init.zeros_(module.bias)
        # Residual projections shrink with depth so the residual stream keeps its scale (GPT-2).
        for block in self.block_list:
            projections = [block.spatial.proj, block.temporal.proj, block.mlp.proj]
            if block.previous is not None:
                projections.append(block.previous.proj)
            for proj in projections:
                nn.init.normal_(proj.weight, std=LINEAR_INIT_STD / math.sqrt(len(projections) * self.cfg.n_layers))
            # adaLN-zero: FiLM starts as the identity, so a new model is the plain one.
            if block.film is not None:
                nn.init.zeros_(block.film.weight)
        # The token embedding is a sum of F factors: each N(0, (init_std/√F)²) keeps the sum at init_std².
        factor_std = self.cfg.init_std / math.sqrt(self.factors.num_factors)
        for table in self.factor_embeddings:
            assert isinstance(table, nn.Embedding)
            nn.init.normal_(table.weight, std=factor_std)
        if self.window_slot is not None:
            nn.init.normal_(self.window_slot.weight, std=self.cfg.init_std)
        if not self.rope:
            nn.init.normal_(self.spatial_position, std=self.cfg.init_std)
            nn.init.normal_(self.temporal_position, std=self.cfg.init_std)
        # Logit scale init_std at any width, so the first loss is the random-guess loss ln(64000).
        for head in self.heads:
            assert isinstance(head, nn.Linear)
            nn.init.normal_(head.weight, std=self.cfg.init_std / math.sqrt(self.cfg.d_model))

    def embed_tokens(self, factor_ids: torch.Tensor) -> torch.Tensor:
        """[..., F] factor ids (mask id where masked) -> [..., D], the sum over factors."""
        return sum(table(factor_ids[..., f]) for f, table in enumerate(self.factor_embeddings))

    def forward(self, factor_ids: torch.Tensor, states: torch.Tensor, target_frames: int) -> list[torch.Tensor]:
        """factor_ids [B, T, S, F] (mask id where masked); states [B, 17*W, 25]
        normalised. Returns per factor logits [B, target_frames * S, size] for every
        position of the last `target_frames` latent frames. T may be shorter than the
        model's latent frames: the first T of them (temporal attention is causal, so
        frame k's output depends on frames 0..k alone)."""
        b, t, s, _ = factor_ids.shape
        x = self.embed_tokens(factor_ids)
        rope: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        cond: torch.Tensor | None = None
        if self.rope:
            rope = (self.spatial_rope, self.temporal_rope[:, :t])
        else:
            x = x + self.spatial_position[None, None] + self.temporal_position[None, :t, None]
        if self.state_embedding is not None:
            per_frame = self.state_embedding(states)  # [B, 17W, D]
            pooling = self.state_pooling[:t].to(per_frame.dtype)
            cond = torch.einsum("tf,bfd->btd", pooling, per_frame)  # [B, T, D]: each latent frame's
            x = x + cond[:, :, None, :]
        if self.window_slot is not None:
            # a sample starts at a window's frame 0, so latent frame k is slot k mod 3
            slots = self.window_slot(torch.arange(t, device=x.device) % len(LATENT_FRAME_GROUPS))  # [T, D]
            x = x + slots[None, :, None, :]
            # FiLM too: a block's modulation is then the states' own for this kind of grid.
            cond = None if cond is None else cond + slots[None]
        for block_index in self.layer_blocks:
            x = self.block_list[block_index](x, *rope, cond)
        # Every target position, masked or not: a fixed shape (the heads are small, a
        # few 40-way projections); masked_token_loss counts only the masked ones.
        hidden = self.norm_out(x[:, t - target_frames :].reshape(b, target_frames * s, -1))
        if self.cfg.tied_heads:
            # the table's last row is the mask token: never a prediction
            logits = [
                F.linear(hidden, cast(torch.Tensor, table.weight)[:size], bias)
                for table, bias, size in zip(self.factor_embeddings, self.head_biases, self.factors.sizes, strict=True)
            ]
        else:
            logits = [head(hidden) for head in self.heads]
        if self.copy_gate is not None:
            logits = self._copy_scores(logits, hidden, factor_ids, target_frames)
        return logits

    def _copy_scores(
        self, logits: list[torch.Tensor], hidden: torch.Tensor, factor_ids: torch.Tensor, target_frames: int
    ) -> list[torch.Tensor]:
        """Each factor's logits plus the gate's score on the code the grid before held at the
        same position, for the grids that open a window (the first target grid's grid before
        is the context's last): one video frame after the grid before, where a still view is a
        copy. A window's other grids are eight frames on, moved too far to copy in place (the
        gate there cost the 2nd and 3rd grids 14 points of accuracy)."""
        assert self.copy_gate is not None
        b, t, s, _ = factor_ids.shape
        before = factor_ids[:, t - target_frames - 1 : t - 1].reshape(b, target_frames * s, -1)  # [B, N, F]
        opens = (torch.arange(t - target_frames, t, device=hidden.device) % len(LATENT_FRAME_GROUPS)) == 0
        gate = self.copy_gate(hidden).to(logits[0].dtype)  # [B, N, F]
        gate = gate * opens.repeat_interleave(s).to(gate.dtype)[None, :, None]
        out = []
        for f, (factor_logits, size) in enumerate(zip(logits, self.factors.sizes, strict=True)):
            ids = before[..., f]
            known = ids < size  # the mask id (size) carries no code
            score = gate[..., f] * known.to(gate.dtype)
            out.append(factor_logits.scatter_add(-1, ids.clamp(max=size - 1)[..., None], score[..., None]))
        return out

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def token_cross_entropy(logits: list[torch.Tensor], targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_factors cross-entropy of every token (the joint CE under the factorised pmf),
    and whether every factor's argmax is right. logits per factor [B, N, size],
    targets [B, N, F] -> ([B, N] float32, [B, N] bool)."""
    token_loss = torch.zeros(targets.shape[:2], device=targets.device, dtype=torch.float32)
    correct = torch.ones(targets.shape[:2], device=targets.device, dtype=torch.bool)
    for f, factor_logits in enumerate(logits):
        factor_logits = factor_logits.float()
        ce = F.cross_entropy(factor_logits.flatten(0, 1), targets[..., f].flatten(), reduction="none")
        token_loss = token_loss + ce.view(targets.shape[:2])
        correct &= factor_logits.argmax(dim=-1) == targets[..., f]
    return token_loss, correct


def masked_token_loss(
    logits: list[torch.Tensor], targets: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample mean over its masked tokens of Σ_factors cross-entropy.

    Averaging per sample (not per micro-batch) makes the loss of a step the same
    however its samples are split into micro-batches or ranks. mask [B, N] bool:
    which target tokens were masked (the others are not scored).
    Returns (per-sample loss [B], per-token all-factors-correct [B, N]).
    """
    token_loss, correct = token_cross_entropy(logits, targets)
    weight = mask.to(token_loss.dtype)
    return (token_loss * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1), correct


def forward_loss(
    model: nn.Module,
    factor_ids: torch.Tensor,
    states: torch.Tensor,
    targets: torch.Tensor,
    target_mask: torch.Tensor,
    device: torch.device,
    precision: str,
) -> torch.Tensor:
    """One micro-batch's per-sample losses, the forward under autocast: the function a
    training step calls for each micro-batch, and what `train.compile` compiles."""
    with autocast(device, precision):
        logits = model(factor_ids, states, targets.shape[1] // factor_ids.shape[2])
    per_sample, _ = masked_token_loss(logits, targets, target_mask)
    return per_sample

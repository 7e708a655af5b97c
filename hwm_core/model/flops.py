"""Model FLOPs of a training step, counted from the shapes (matmuls only).

The count follows the usual convention for MFU: 2·m·n·k per matmul, backward
twice the forward, embeddings and element-wise work left out. Causal temporal
attention counts half its square, as a fused kernel computes only that.
"""

from __future__ import annotations

from ..config.schema import Config
from ..data.split import FRAMES_PER_WINDOW, STATE_DIM
from ..fsq import FactorSpec
from .masked_hwm import SPATIAL_POSITIONS, tile_keys_side


def forward_flops_per_sample(config: Config) -> float:
    m = config.model
    d, t, s = m.d_model, config.latent_frames, SPATIAL_POSITIONS
    tokens = t * s
    hidden = round(d * m.mlp_ratio)
    per_layer = (
        2 * tokens * d * 3 * d * 2  # qkv projections, spatial and temporal
        + 2 * tokens * d * d * 2  # output projections, spatial and temporal
        + 2 * tokens * d * hidden * 2  # MLP in and out
        + 2 * 2 * t * s * s * d  # spatial attention: QKᵀ and AV, per latent frame
        + 2 * 2 * s * t * t * d / 2  # temporal attention, causal
    )
    # in the last previous_frame_layers blocks, each frame attends to the frame before it:
    # the whole of it, or with previous_frame_window the keys around each tile of queries
    keys = tile_keys_side(m.previous_frame_window) ** 2 if m.previous_frame_window else s
    previous = 2 * tokens * d * 3 * d + 2 * tokens * d * d + 2 * 2 * t * s * keys * d
    film = 2 * t * d * 2 * 3 * d if m.state_conditioning == "film" and m.condition_on_states else 0
    extra = m.previous_frame_layers * previous + m.n_layers * film  # FiLM: per frame, not per token
    frames = config.data.windows * FRAMES_PER_WINDOW
    states = 2 * frames * (STATE_DIM * d + d * d) if m.condition_on_states else 0
    # the heads see every position of the target frames (a fixed shape; the loss counts the masked)
    heads = 2 * config.data.future_latents * s * d * sum(FactorSpec(m.factor_groups).sizes)
    return m.n_layers * per_layer + extra + states + heads


def train_flops_per_step(config: Config, global_batch: int) -> float:
    """Forward + backward (3x forward) over the global batch of one optimizer step."""
    return 3 * forward_flops_per_sample(config) * global_batch

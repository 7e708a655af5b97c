"""Masked-HWM: the embedding init, the first loss, the masking, parameter sharing."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from hwm_core.config.schema import Config, ModelConfig
from hwm_core.data.masking import corrupt_sample, sample_rng
from hwm_core.fsq import CODEBOOK_SIZE, FSQ_LEVELS, FactorSpec, codes_to_digits, digits_to_codes
from hwm_core.model.masked_hwm import MaskedHWM, masked_token_loss
from hwm_core.training.session import TrainRequest, prepare
from tests.helpers import tiny_sets

GROUPINGS = {1: [[0, 1, 2, 3, 4, 5]], 2: [[0, 1, 2], [3, 4, 5]], 3: [[0, 3], [1, 4], [2, 5]]}


def test_fsq_factor_round_trip():
    codes = torch.arange(CODEBOOK_SIZE)
    for groups in GROUPINGS.values():
        spec = FactorSpec(groups)
        factors = spec.codes_to_factors(codes)
        assert int(np.prod(spec.sizes)) == CODEBOOK_SIZE
        assert torch.equal(spec.factors_to_codes(factors), codes)
        for f, size in enumerate(spec.sizes):
            assert factors[:, f].min() == 0 and factors[:, f].max() == size - 1
        # the data path's numpy table and the device path's arithmetic agree on every code
        assert np.array_equal(spec.factor_array(codes.numpy()), spec._arithmetic(codes).numpy())
    digits = codes_to_digits(np.arange(CODEBOOK_SIZE))
    assert (digits < np.asarray(FSQ_LEVELS)).all()
    assert np.array_equal(digits_to_codes(digits), np.arange(CODEBOOK_SIZE))


@pytest.mark.parametrize("num_factors", [1, 2, 3])
def test_summed_embedding_std_is_init_std(num_factors):
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=64, n_layers=1, n_heads=2, shared_from=1, factor_groups=GROUPINGS[num_factors], init_std=0.02
    )
    model = MaskedHWM(cfg, latent_frames=3)
    codes = torch.randint(0, CODEBOOK_SIZE, (20000,))
    with torch.no_grad():
        summed = model.embed_tokens(model.factors.codes_to_factors(codes))
    assert abs(summed.std().item() - 0.02) < 0.05 * 0.02
    for table in model.factor_embeddings:
        assert abs(table.weight.std().item() - 0.02 / math.sqrt(num_factors)) < 0.05 * 0.02 / math.sqrt(num_factors)


@pytest.mark.parametrize("groups", [GROUPINGS[3], GROUPINGS[1]])
def test_initial_loss_is_ln_codebook(groups):
    sets = tiny_sets(
        "model.d_model=192",
        "model.n_heads=6",
        f"model.factor_groups={groups}",
        "train.batch_size=4",
        "data.windows=1",
        "data.future_latents=1",
    )
    session = prepare(TrainRequest(preset="cpu", overrides=sets), create_run=False)
    batch = session.builder.train_batch(1, 0, [0, 1, 2, 3])
    with torch.no_grad():
        logits = session.model(batch.factor_ids, batch.states, batch.target_frames)
        per_sample, _ = masked_token_loss(logits, batch.targets, batch.target_mask)
    assert abs(per_sample.mean().item() - math.log(CODEBOOK_SIZE)) < 0.15


def test_heads_cover_the_target_frames_and_the_loss_only_masked_tokens():
    cfg = Config()
    cfg.model = ModelConfig(d_model=32, n_layers=1, n_heads=2, shared_from=1)
    cfg.data.windows, cfg.data.future_latents = 1, 1
    codes = np.random.default_rng(0).integers(0, CODEBOOK_SIZE, size=(3, 1024))
    corrupted, mask = corrupt_sample(codes, sample_rng(0, 0, 1, 0), future_latents=1, max_corrupt_rate=0.2)
    assert not mask[:2].any() and mask[2].any()  # only the future latent is masked
    noisy = (corrupted != codes) & ~mask
    assert noisy[:2].mean() <= 0.25  # Copilot-4D noise: at most max_corrupt_rate (+ sampling slack)
    model = MaskedHWM(cfg.model, 3)
    spec = model.factors
    ids = spec.codes_to_factors(torch.from_numpy(corrupted))[None]
    ids[torch.from_numpy(mask)[None]] = torch.tensor(spec.mask_ids())
    logits = model(ids, torch.zeros(1, 17, 25), 1)
    assert [tuple(x.shape) for x in logits] == [(1, 1024, size) for size in spec.sizes]  # every target position
    targets = spec.codes_to_factors(torch.from_numpy(codes[2:]).reshape(1, 1024))
    target_mask = torch.from_numpy(mask[2:]).reshape(1, 1024)
    per_sample, _ = masked_token_loss(logits, targets, target_mask)
    # an unmasked target token's logits do not count
    changed = [x.detach().clone() for x in logits]
    changed[0][~target_mask] += 100.0
    assert torch.equal(masked_token_loss(changed, targets, target_mask)[0], per_sample)


def test_mask_ratio_follows_the_cosine_schedule():
    codes = np.zeros((3, 1024), dtype=np.int64)
    ratios = [
        corrupt_sample(codes, sample_rng(0, 0, 1, i), future_latents=1, max_corrupt_rate=0.0)[1].sum() / 1024
        for i in range(400)
    ]
    assert abs(np.mean(ratios) - 2 / math.pi) < 0.04  # E[cos(πu/2)] = 2/π
    assert min(ratios) > 0


def test_per_frame_masking_draws_each_target_frame_apart():
    codes = np.zeros((6, 1024), dtype=np.int64)

    def masks(per_frame: bool) -> np.ndarray:  # [samples, 3 target frames] masked share
        drawn = [
            corrupt_sample(
                codes,
                sample_rng(0, 0, 1, i),
                future_latents=3,
                max_corrupt_rate=0.0,
                full_mask_rate=0.5,
                per_frame=per_frame,
            )[1]
            for i in range(300)
        ]
        assert not any(m[:3].any() for m in drawn)  # the context is never masked
        return np.array([m[3:].mean(axis=1) for m in drawn])

    together, apart = masks(False), masks(True)
    # one draw for all: the frames share a ratio (up to rounding); apart: their own, and a
    # frame masked whole often follows one that is not, as teacher forcing meets it
    assert np.abs(together - together.mean(axis=1, keepdims=True)).max() < 0.05
    assert (np.abs(apart[:, 1] - apart[:, 0]) > 0.2).mean() > 0.4
    assert ((apart[:, 1] == 1.0) & (apart[:, 0] < 0.5)).mean() > 0.05  # expected 0.5 x 0.5 x 1/3
    assert abs(apart.mean() - (0.5 + 0.5 * 2 / math.pi)) < 0.05 and (apart > 0).all()


def test_a_visible_prefix_leaves_the_first_target_frames_whole_and_masks_from_there():
    codes = np.zeros((6, 1024), dtype=np.int64)
    firsts = []
    for i in range(300):
        _, mask = corrupt_sample(
            codes, sample_rng(0, 0, 1, i), future_latents=3, max_corrupt_rate=0.0, full_mask_rate=0.5,
            per_frame=True, visible_prefix=True,
        )  # fmt: skip
        masked = mask[3:].any(axis=1)  # [3]: which target frames have a masked token
        first = int(np.argmax(masked))
        assert not mask[:3].any() and masked[first:].all() and not masked[:first].any()
        firsts.append(first)
    # k whole frames, k = 0, 1 or 2 about equally often: the last frame is always predicted
    assert np.bincount(firsts, minlength=3).min() > 70 and max(firsts) == 2


def test_window_slots_add_each_grids_place_in_its_window_and_nothing_else():
    """A window's frame 0 is one video frame past the grid before, its other grids eight: the
    slot embedding (row k mod 3 for latent frame k) is all that tells them apart."""
    layout = ("data.windows=2", "data.future_latents=3")
    plain, slots = _model(*layout), _model(*layout, "model.window_slots=true")
    assert slots.window_slot is not None and tuple(slots.window_slot.weight.shape) == (3, 64)
    slots.load_state_dict(plain.state_dict(), strict=False)
    ids, states = torch.randint(0, 8, (1, 6, 1024, 3)), torch.randn(1, 34, 25)
    with torch.no_grad():
        slots.window_slot.weight.zero_()
        for a, b in zip(plain(ids, states, 6), slots(ids, states, 6), strict=True):
            assert torch.equal(a, b)  # zero slots: the plain model
        slots.window_slot.weight[1] = 0.5  # frames 1-8's slot: grid 0 (before it in time) keeps its output
        moved = [o.view(6, 1024, -1) for o in slots(ids, states, 6)]
        same = [o.view(6, 1024, -1) for o in plain(ids, states, 6)]
    assert all(torch.equal(m[0], p[0]) for m, p in zip(moved, same, strict=True))
    assert not any(torch.allclose(m[1], p[1]) for m, p in zip(moved, same, strict=True))


def test_parameter_sharing_reuses_one_block():
    base = dict(d_model=32, n_heads=2, n_layers=6)
    unshared = MaskedHWM(ModelConfig(**base, shared_from=6), 3)
    shared = MaskedHWM(ModelConfig(**base, shared_from=2), 3)
    assert len(unshared.blocks) == 6 and len(shared.blocks) == 3
    assert shared.layer_blocks == [0, 1, 2, 2, 2, 2]
    block_params = sum(p.numel() for p in unshared.blocks[0].parameters())
    assert unshared.num_parameters() - shared.num_parameters() == 3 * block_params


def test_temporal_attention_is_causal():
    torch.manual_seed(0)
    model = MaskedHWM(ModelConfig(d_model=32, n_layers=2, n_heads=2, shared_from=2), 6).eval()
    ids = torch.randint(0, 40, (1, 6, 1024, 3))
    states = torch.randn(1, 34, 25)
    with torch.no_grad():
        before = model(ids, states, 6)
        ids[:, 5] = 0
        after = model(ids, states, 6)
    for a, b in zip(before, after):
        assert torch.allclose(a[:, :1024], b[:, :1024], atol=1e-6)  # frame 0 never saw frame 5


def test_rotary_positions_make_attention_see_offsets_not_places():
    from hwm_core.model.masked_hwm import rotary_tables, rotate

    cos, sin = rotary_tables(torch.arange(32)[:, None], 16)
    q, k = torch.randn(16), torch.randn(16)
    scores = [float(rotate(q, cos[i], sin[i]) @ rotate(k, cos[i + 3], sin[i + 3])) for i in range(20)]
    assert max(scores) - min(scores) < 1e-4  # the same offset scores the same anywhere
    assert abs(float(rotate(q, cos[5], sin[5]).norm()) - float(q.norm())) < 1e-5
    # the sign of rotate_half sits on the table: bitwise the textbook form, so runs trained before repeat
    x = torch.randn(4, 32, 16)
    half = x.chunk(2, dim=-1)
    assert torch.equal(rotate(x, cos, sin), x * cos + torch.cat((-half[1], half[0]), dim=-1) * sin)
    torch.manual_seed(0)
    rope = MaskedHWM(ModelConfig(d_model=32, n_layers=1, n_heads=2, shared_from=1, positions="rope"), 3)
    assert not hasattr(rope, "spatial_position")  # no learned positions to train
    ids = torch.randint(0, 40, (1, 3, 1024, 3))
    logits = rope(ids, torch.zeros(1, 17, 25), 1)
    assert [tuple(x.shape) for x in logits] == [(1, 1024, 40)] * 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux only")
def test_importing_the_engine_pins_one_malloc_arena():
    # Without it a CPU run differs in the last bits from one process to the next
    # (test_resume's bitwise comparisons catch that only now and then).
    import hwm_core

    assert hwm_core.ONE_MALLOC_ARENA


def _model(*sets: str) -> MaskedHWM:
    from hwm_core.config.loading import load_config

    # two blocks (the cpu preset has one), so tests can tell blocks with and without
    # previous-frame attention apart
    config = load_config("cpu", ["model.n_layers=2", "model.shared_from=2", *sets])
    torch.manual_seed(0)
    return MaskedHWM(config.model, config.latent_frames).eval()


def test_film_starts_as_the_identity_so_a_new_model_is_the_plain_one():
    plain, film = _model(), _model("model.state_conditioning=film")
    film.load_state_dict(plain.state_dict(), strict=False)  # the same weights; FiLM's are zero
    ids, states = torch.randint(0, 8, (2, 3, 1024, 3)), torch.randn(2, 17, 25)
    with torch.no_grad():
        for a, b in zip(plain(ids, states, 1), film(ids, states, 1)):
            assert torch.equal(a, b)
    assert all(block.film is not None for block in film.block_list)


@pytest.mark.parametrize("window", [0, 2])
def test_attention_to_the_previous_frame_never_sees_a_later_frame(window):
    """Frame k's output depends on frames 0..k alone, with previous-frame attention (to the
    whole frame or a window of it) as without."""
    model = _model(
        "model.previous_frame_layers=2",
        f"model.previous_frame_window={window}",
        "data.windows=2",
        "data.future_latents=2",
    )
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    ids, states = torch.randint(0, 8, (1, 6, 1024, 3)), torch.randn(1, 34, 25)
    later = ids.clone()
    later[:, 5] = torch.randint(0, 8, later[:, 5].shape)
    with torch.no_grad():
        a, b = model(ids, states, 2), model(later, states, 2)
    for fa, fb in zip(a, b):
        assert torch.allclose(fa[:, :1024], fb[:, :1024], atol=1e-5)  # frame 4 unchanged
        assert not torch.allclose(fa[:, 1024:], fb[:, 1024:])  # frame 5 itself changed
    assert [block.previous is not None for block in model.block_list] == [True, True]
    assert [b.previous is not None for b in _model("model.previous_frame_layers=1").block_list] == [False, True]


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_a_windowed_previous_frame_attention_is_the_whole_one_masked_to_each_tiles_keys(radius):
    """Tiles of queries, each with the keys around it, give exactly full attention under a
    mask that allows each query its tile's keys; and every query sees at least the offsets
    -R..R in rows and columns, at the frame's edges too."""
    from hwm_core.model.masked_hwm import TOKENS_SIDE, PreviousFrameTiles

    side, tiles = TOKENS_SIDE, PreviousFrameTiles(radius)
    q, k, v = (torch.randn(2, 3, side * side, 8, dtype=torch.float64) for _ in range(3))
    position = torch.arange(side * side)
    rows, cols = position // side, position % side
    tile = PreviousFrameTiles.TILE
    key_rows, key_cols = tiles.rows[rows // tile], tiles.rows[cols // tile]  # [S, width] each query's
    allowed = (rows[None, :, None] == key_rows[:, None, :]).any(-1) & (cols[None, :, None] == key_cols[:, None, :]).any(
        -1
    )
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    tiled = tiles.attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), dropout_p=0.0).transpose(1, 2)
    assert torch.allclose(tiled, expected, atol=1e-12)
    near = ((rows[:, None] - rows[None]).abs() <= radius) & ((cols[:, None] - cols[None]).abs() <= radius)
    assert bool((allowed | ~near).all())  # every offset within R is among a query's keys
    assert int(allowed.sum(1).max()) == tiles.width**2 < side * side


def test_a_windowed_model_costs_fewer_flops():
    from hwm_core.config.loading import load_config
    from hwm_core.model.flops import forward_flops_per_sample

    whole = load_config("cpu", ["model.previous_frame_window=0"])
    windowed = load_config("cpu", ["model.previous_frame_window=2"])
    assert forward_flops_per_sample(windowed) < forward_flops_per_sample(whole)


def test_a_window_as_wide_as_the_frame_is_the_whole_frame():
    wide = _model("model.previous_frame_layers=1", "model.previous_frame_window=14")
    whole = _model("model.previous_frame_layers=1", "model.previous_frame_window=0")
    wide.load_state_dict(whole.state_dict())
    ids, states = torch.randint(0, 8, (1, 3, 1024, 3)), torch.randn(1, 17, 25)
    with torch.no_grad():
        for a, b in zip(wide(ids, states, 1), whole(ids, states, 1)):
            assert torch.allclose(a, b, atol=1e-5)
    assert wide.block_list[-1].previous is not None and wide.block_list[-1].previous.tiles is None


def test_tied_heads_score_each_code_by_its_own_embedding_row():
    plain, tied = _model(), _model("model.tied_heads=true")
    assert len(tied.heads) == 0 and len(tied.head_biases) == 3
    assert plain.num_parameters() - tied.num_parameters() == sum(64 * size for size in tied.factors.sizes)
    ids, states = torch.randint(0, 8, (1, 3, 1024, 3)), torch.randn(1, 17, 25)
    with torch.no_grad():
        for table in tied.factor_embeddings:
            table.weight[5] += 3.0  # one code's row, in every factor
        logits = tied(ids, states, 1)
        before = _model("model.tied_heads=true")(ids, states, 1)
    for moved, base in zip(logits, before, strict=True):
        changed = (moved - base).abs().amax(dim=(0, 1)) > 0
        assert changed[5]  # code 5 is scored by its own (moved) row


def test_the_copy_gate_starts_shut_and_scores_the_code_the_grid_before_held_where_a_window_opens():
    layout = ("data.windows=2", "data.future_latents=3")  # the compression task: the next window's 3 grids
    plain, gated = _model(*layout), _model(*layout, "model.copy_gate=true")
    gated.load_state_dict(plain.state_dict(), strict=False)  # the same weights; the gate's are zero
    ids, states = torch.randint(0, 40, (2, 6, 1024, 3)), torch.randn(2, 34, 25)
    ids[:, 2, :100] = 40  # masked in the grid before: nothing to copy there
    with torch.no_grad():
        for a, b in zip(plain(ids, states, 3), gated(ids, states, 3), strict=True):
            assert torch.equal(a, b)  # shut: a new model is the plain one
        gated.copy_gate.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
        opened = gated(ids, states, 3)
        base = plain(ids, states, 3)
    before = ids[:, 2]  # the context's last grid, before the first target grid (latent frame 3)
    for f, (moved, was) in enumerate(zip(opened, base, strict=True)):
        expected = torch.zeros_like(was)
        known = before[..., f] < 40
        expected[:, :1024].scatter_(-1, before[..., f].clamp(max=39)[..., None], (f + 1.0) * known[..., None].float())
        # only the grid that opens the window: frames 4 and 5 are eight video frames on
        assert torch.allclose(moved - was, expected, atol=1e-5)

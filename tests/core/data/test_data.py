"""The v2.0 reader on hand-written files, the synthetic generator, `data inspect`."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from hwm_core.data import Split, StateStats, WindowDataset
from hwm_core.data.split import ANGULAR_VELOCITY_DIM, LINEAR_VELOCITY_DIM
from hwm_core.data.synth import write_split
from hwm_core.errors import DataError
from tests.helpers import hwm, write_split_by_hand


@pytest.mark.parametrize("flat", [False, True])
def test_reader_accepts_both_layouts(tmp_path, flat):
    root = write_split_by_hand(tmp_path / "split", [40, 51], flat=flat)
    split = Split.open(root)
    assert split.layout == ("flat" if flat else "nested")
    assert split.num_frames == 91
    assert [s.video.shape for s in split.shards] == [(3, 3, 32, 32), (3, 3, 32, 32)]
    assert split.num_windows == 2 + 3  # only complete 17-frame windows count
    video = np.fromfile(root / ("video_1.bin" if flat else "videos/video_1.bin"), dtype=np.int32)
    assert np.array_equal(np.asarray(split.shards[1].video).ravel(), video)


def test_samples_skip_windows_that_cross_a_segment_cut(tmp_path):
    # 5 windows; the cut falls inside window 2 (frame 40), so window 2 is invalid alone
    # and every multi-window sample containing it is too.
    seg = np.zeros(85, dtype=np.int32)
    seg[40:] = 1
    root = write_split_by_hand(tmp_path / "split", [85], segments=[seg])
    shard = Split.open(root).shards[0]
    assert shard.valid_starts(1).tolist() == [0, 1, 3, 4]
    assert shard.valid_starts(2).tolist() == [0, 3]
    assert shard.valid_starts(3).tolist() == []
    assert shard.num_segments() == 2


def test_a_cut_exactly_at_a_window_boundary_keeps_both_sides(tmp_path):
    seg = np.zeros(68, dtype=np.int32)
    seg[34:] = 7
    root = write_split_by_hand(tmp_path / "split", [68], segments=[seg])
    shard = Split.open(root).shards[0]
    assert shard.valid_starts(2).tolist() == [0, 2]


def test_sample_shapes_and_state_normalisation(tmp_path):
    root = write_split_by_hand(tmp_path / "split", [102])
    raw = np.fromfile(root / "robot_states/states_0.bin", dtype=np.float32).reshape(102, 25)
    raw[:, 21] = np.arange(102) % 2  # hand closure is 0/1 in real data
    raw.tofile(root / "robot_states/states_0.bin")
    split = Split.open(root)
    stats = StateStats.from_split(split)
    assert stats.mean[21] == 0 and stats.std[21] == 1  # hand closure stays 0/1
    data = WindowDataset(split, windows=2, stats=stats)
    tokens, states = data.get(0)
    assert tokens.shape == (6, 32, 32) and states.shape == (34, 25)
    expected = (raw[:34] - raw.mean(0)) / raw.std(0)
    assert np.allclose(states[:, :21], expected[:, :21], atol=1e-4)
    again = StateStats.from_json(json.loads(json.dumps(stats.to_json())))
    assert np.array_equal(again.mean, stats.mean) and np.array_equal(again.std, stats.std)


@pytest.mark.parametrize(
    "damage, needle",
    [
        ("truncate_video", "videos/video_1.bin is truncated"),
        ("extend_states", "robot_states/states_0.bin is longer than expected"),
        ("drop_segments", "segment_indices/segment_idx_1.bin is missing"),
        ("no_num_shards", "has no 'num_shards' field"),
        ("bad_shard_meta", "'shard_num_frames' must be a positive integer"),
        ("no_metadata", "metadata.json is missing"),
        ("not_json", "cannot be read as JSON"),
        ("no_videos_dir", "split/videos/ is missing"),
    ],
)
def test_broken_split_names_the_file(tmp_path, damage, needle):
    root = write_split_by_hand(tmp_path / "split", [40, 51])
    if damage == "truncate_video":
        path = root / "videos/video_1.bin"
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "extend_states":
        with open(root / "robot_states/states_0.bin", "ab") as fh:
            fh.write(b"\0" * 100)
    elif damage == "drop_segments":
        (root / "segment_indices/segment_idx_1.bin").unlink()
    elif damage == "no_num_shards":
        (root / "metadata.json").write_text(json.dumps({"num_images": 91}))
    elif damage == "bad_shard_meta":
        (root / "metadata/metadata_0.json").write_text(json.dumps({"shard_num_frames": "40"}))
    elif damage == "no_metadata":
        (root / "metadata.json").unlink()
    elif damage == "not_json":
        (root / "metadata.json").write_text("{oops")
    elif damage == "no_videos_dir":  # the other sub-folders still mark the layout
        shutil.rmtree(root / "videos")
    with pytest.raises(DataError) as info:
        Split.open(root)
    assert needle in str(info.value)


def test_a_num_images_that_disagrees_with_the_shards_is_a_notice(tmp_path):
    root = write_split_by_hand(tmp_path / "split", [40, 51])
    assert Split.open(root).notices == []
    meta = json.loads((root / "metadata.json").read_text())
    meta["num_images"] = 90
    (root / "metadata.json").write_text(json.dumps(meta))
    (notice,) = Split.open(root).notices
    assert "num_images = 90, but the shards hold 91 frames" in notice


def test_contents_check_catches_bad_tokens_and_nan_states(tmp_path):
    root = write_split_by_hand(tmp_path / "split", [40])
    video = np.fromfile(root / "videos/video_0.bin", dtype=np.int32)
    video[5] = 64000
    video.tofile(root / "videos/video_0.bin")
    with pytest.raises(DataError, match="holds token 64000, outside the codebook"):
        Split.open(root).check_contents()
    video[5] = 3
    video.tofile(root / "videos/video_0.bin")
    states = np.fromfile(root / "robot_states/states_0.bin", dtype=np.float32)
    states[25 * 7 + 3] = np.nan
    states.tofile(root / "robot_states/states_0.bin")
    with pytest.raises(DataError, match="NaN or infinite state at frame 7"):
        Split.open(root).check_contents()


def _digest(root) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_synth_is_deterministic_and_seed_dependent(tmp_path):
    a = write_split(tmp_path / "a", shards=2, frames=300, seed=3)
    b = write_split(tmp_path / "b", shards=2, frames=300, seed=3)
    c = write_split(tmp_path / "c", shards=2, frames=300, seed=4)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_synth_writes_exactly_the_v2_format(tmp_path):
    for flat in (False, True):
        root = write_split(tmp_path / f"s{flat}", shards=2, frames=300, seed=0, flat=flat)
        split = Split.open(root)
        split.check_contents()
        assert split.layout == ("flat" if flat else "nested")
        assert split.shards[0].video.dtype == np.int32 and split.shards[0].video.shape == (18, 3, 32, 32)
        assert split.shards[0].states.shape == (300, 25)
        assert set(np.unique(np.asarray(split.shards[0].states)[:, 21:23])) <= {0.0, 1.0}


def test_synth_view_moves_by_the_velocity_in_the_states(tmp_path):
    """The action-driven part: the next latent frame is the previous one shifted by
    the sum of the velocity states over its frames (floored to whole tokens).
    A predictor that reads the states recovers most tokens exactly; one that
    ignores them (copying the same position) does much worse."""
    root = write_split(tmp_path / "s", shards=1, frames=2040, seed=1)
    shard = Split.open(root).shards[0]
    video, states, seg = (np.asarray(shard.video), np.asarray(shard.states), np.asarray(shard.segments))
    exact_with_states, exact_without = [], []
    for w in range(shard.num_windows):
        frames = slice(17 * w + 9, 17 * w + 17)  # latent 2 covers frames 9..16
        if seg[17 * w] != seg[17 * w + 16]:
            continue
        dy = states[frames, LINEAR_VELOCITY_DIM].sum()
        dx = states[frames, ANGULAR_VELOCITY_DIM].sum()
        # camera positions are floored, so the whole-token shift is within one of the sum
        prev, nxt = video[w, 1], video[w, 2]
        best = max(
            np.mean(np.roll(prev, (-sy, -sx), axis=(0, 1))[4:24, 4:24] == nxt[4:24, 4:24])
            for sy in (int(np.floor(dy)), int(np.ceil(dy)))
            for sx in (int(np.floor(dx)), int(np.ceil(dx)))
        )
        exact_with_states.append(best)
        exact_without.append(np.mean(prev[4:24, 4:24] == nxt[4:24, 4:24]))
    assert np.mean(exact_with_states) > 0.85
    assert np.mean(exact_without) < np.mean(exact_with_states) - 0.2


def test_inspect_json(tmp_path):
    root = write_split_by_hand(
        tmp_path / "split", [85, 40], flat=True, segments=[np.repeat([0, 1], [40, 45]), np.zeros(40)]
    )
    result = hwm("data", "inspect", str(root), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["num_shards"] == 2 and info["num_frames"] == 125
    assert info["num_windows"] == 5 + 2
    assert info["num_valid_samples"] == 4 + 2
    assert info["num_segments"] == 3
    video = np.concatenate([np.fromfile(root / f"video_{s}.bin", dtype=np.int32) for s in (0, 1)])
    assert (info["token_min"], info["token_max"]) == (int(video.min()), int(video.max()))
    assert len(info["state_stats"]) == 25


def test_inspect_broken_split_is_one_line_exit_2(tmp_path):
    root = write_split_by_hand(tmp_path / "split", [40])
    (root / "videos/video_0.bin").write_bytes(b"\0" * 8)
    result = hwm("data", "inspect", str(root))
    assert result.returncode == 2
    assert "video_0.bin is truncated" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_synth_cli_refuses_to_overwrite(tmp_path):
    out = tmp_path / "out"
    assert hwm("data", "synth", str(out), "--shards", "1", "--frames", "100", "--flat").returncode == 0
    assert (out / "video_0.bin").exists()
    before = _digest(out)
    again = hwm("data", "synth", str(out), "--shards", "1", "--frames", "100", "--seed", "5")
    assert again.returncode == 2 and "not empty" in again.stderr
    assert _digest(out) == before


def test_synth_onto_an_existing_file_is_one_line(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    result = hwm("data", "synth", str(target))
    assert result.returncode == 2 and "is a file" in result.stderr and "Traceback" not in result.stderr
    assert target.read_text() == "keep me"

"""`hwm-tui data download`: the Hub client's own cache laid out as splits that pass
`data inspect` and train, and every way a download fails as one line, exit 2.

No test reaches the Hub: the happy path runs the real command offline
(HF_HUB_OFFLINE=1) on a cache laid out as the Hub client lays it out; the error
paths raise the Hub client's real exception classes from snapshot_download.
"""

from __future__ import annotations

import errno
import shlex
import sys
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import errors
from typer.testing import CliRunner

from hwm_core.hub import REPO_ID
from hwm_tui.cli import app
from tests.helpers import hub_cache, hwm, set_args, tiny_sets, write_split_by_hand

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def cache(tmp_path) -> Path:
    source = tmp_path / "repo"
    write_split_by_hand(source / "train_v2.0", [1020, 680])  # sub-folder layout, as train_v2.0 is
    write_split_by_hand(source / "val_v2.0", [680], flat=True, seed=1)  # flat, as val_v2.0 is
    write_split_by_hand(source / "train_v1.1", [340])  # an older version the command must leave alone
    hub_cache(tmp_path / "hub", source, REPO_ID, COMMIT)
    return tmp_path / "hub"


def offline(cache: Path) -> dict:
    return {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(cache.parent / "hf-home")}


def test_download_from_the_hub_cache_lays_out_splits_that_inspect_accepts_and_train(cache, tmp_path):
    to = tmp_path / "data"
    result = hwm("data", "download", "--to", str(to), env=offline(cache))
    assert result.returncode == 0, result.stderr
    for name in ("train_v2.0", "val_v2.0"):
        assert (to / name).is_symlink() and (to / name / "metadata.json").is_file()
        inspected = hwm("data", "inspect", str(to / name), "--json")
        assert inspected.returncode == 0, inspected.stderr
    assert not (to / "train_v1.1").exists()
    assert "1,700" in result.stdout and "680" in result.stdout  # each split's frames, as inspect counts them
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("hwm-tui train "))
    assert line == f"hwm-tui train --data {to / 'train_v2.0'} --val-data {to / 'val_v2.0'}"
    # the printed line trains, as printed (plus a tiny model and two steps)
    args = shlex.split(line)[1:]
    trained = hwm(*args, "--headless", "--max-steps", "2", "--runs-dir", str(tmp_path / "runs"), *set_args(tiny_sets()))
    assert trained.returncode == 0, trained.stderr
    # the same command again (a resume, or another revision) replaces the links
    again = hwm("data", "download", "--to", str(to), "--split", "val", env=offline(cache))
    assert again.returncode == 0, again.stderr
    assert "no train split" not in again.stdout and "--split train" in again.stdout


def test_offline_without_the_data_in_the_cache_is_one_line(tmp_path):
    result = hwm("data", "download", "--to", str(tmp_path / "data"), env=offline(tmp_path / "empty"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "HF_HUB_OFFLINE is set" in lines[0] and "rerun the same command" in lines[0]


def test_a_folder_in_the_way_is_one_line(cache, tmp_path):
    (tmp_path / "data" / "train_v2.0").mkdir(parents=True)
    result = hwm("data", "download", "--to", str(tmp_path / "data"), "--split", "train", env=offline(cache))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "is not a link this command made" in lines[0]


def response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", f"https://huggingface.co/api/datasets/{REPO_ID}"))


@pytest.mark.parametrize(
    ("raised", "says"),
    [
        (errors.LocalEntryNotFoundError("Cannot find the requested files in the cache"), "cannot reach the Hugging"),
        (httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"), "the connection to the Hub failed"),
        (errors.RevisionNotFoundError("404 Revision Not Found", response=response(404)), "revision 'v9' is not in"),
        (errors.GatedRepoError("403 gated", response=response(403)), "is gated: accept its terms"),
        (errors.RepositoryNotFoundError("401", response=response(401)), "is not a dataset repository on the Hub"),
        (errors.HfHubHTTPError("503 Service Unavailable", response=response(503)), "the Hub answered 503"),
        (OSError(errno.ENOSPC, "No space left on device"), "is full: free space, or put the cache on a larger"),
        (KeyboardInterrupt(), "download interrupted: rerun the same command"),
    ],
    ids=["no-network", "connect", "revision", "gated", "not-found", "hub-down", "disk-full", "interrupted"],
)
def test_each_failure_is_one_line_exit_2_and_keeps_what_was_downloaded(raised, says, monkeypatch, tmp_path):
    cache = tmp_path / "hub"
    partial = cache / "datasets--1x-technologies--worldmodel" / "blobs" / "abc.incomplete"
    asked = {}

    def fails(**kwargs):
        asked.update(kwargs)
        partial.parent.mkdir(parents=True)
        partial.write_bytes(b"half a shard")  # what the client had fetched when it failed
        raise raised

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fails)
    to = tmp_path / "data"
    args = ["data", "download", "--to", str(to), "--cache-dir", str(cache), "--split", "train", "--revision", "v9"]
    result = CliRunner().invoke(app, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, (result.stderr, result.exception)
    assert lines[0].startswith("error: ") and says in lines[0], lines[0]
    assert partial.read_bytes() == b"half a shard"  # kept for the next try, which resumes
    assert not to.exists()  # no link to a split that is not there
    assert asked["allow_patterns"] == ["train_v2.0/*"] and asked["repo_type"] == "dataset"
    assert asked["repo_id"] == REPO_ID and asked["revision"] == "v9"


def test_without_the_hub_client_the_line_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    result = CliRunner().invoke(app, ["data", "download", "--to", str(tmp_path / "data")])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: data download needs the Hugging Face Hub client: pip install 'hwm-tui[hub]'"


def test_the_repository_is_named_in_help_and_can_be_overridden(monkeypatch, tmp_path):
    shown = CliRunner().invoke(app, ["data", "download", "--help"], env={"COLUMNS": "200"})
    assert REPO_ID in shown.stdout and "--repo" in shown.stdout
    asked = {}
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kw: asked.update(kw) or str(tmp_path))
    result = CliRunner().invoke(app, ["data", "download", "--repo", "me/mirror", "--to", str(tmp_path / "d")])
    assert asked["repo_id"] == "me/mirror" and asked["allow_patterns"] == ["train_v2.0/*", "val_v2.0/*"]
    assert result.exit_code == 2 and "has no train_v2.0/ folder" in result.stderr


# ------------------------------------------------------------------ the decoder


def decoder_cache(tmp_path: Path, kind: str = "good") -> Path:
    """The Cosmos model repository in a Hub cache, as hf_hub_download leaves it: decoder.jit only."""
    from hwm_core.hub import DECODER_FILE, DECODER_REPO
    from tests.fake_decoder import write_fake_decoder

    write_fake_decoder(tmp_path / "model" / DECODER_FILE, kind)
    hub_cache(tmp_path / "hub", tmp_path / "model", DECODER_REPO, COMMIT, kind="models")
    return tmp_path / "hub"


def test_download_decoder_offline_finds_the_cached_file_checks_it_and_commands_find_it(tmp_path):
    cache = decoder_cache(tmp_path)
    result = hwm("data", "download", "--decoder", env=offline(cache))
    assert result.returncode == 0, result.stderr
    where = cache / "models--nvidia--Cosmos-Tokenizer-DV8x8x8" / "snapshots" / COMMIT / "decoder.jit"
    assert f"decoder: {where}" in result.stdout
    assert "decodes to 17 RGB frames in" in result.stdout and "every command finds it there" in result.stdout
    from hwm_core.pixels.decoder import find_decoder

    assert find_decoder(cache_dir=cache) == where  # as every command looks for it


def test_download_decoder_failures_are_one_line_exit_2(tmp_path, monkeypatch):
    empty = hwm("data", "download", "--decoder", env=offline(tmp_path / "empty"))
    lines = empty.stderr.strip().splitlines()
    assert empty.returncode == 2 and len(lines) == 1 and "HF_HUB_OFFLINE is set" in lines[0], empty.stderr
    bad = hwm("data", "download", "--decoder", env=offline(decoder_cache(tmp_path, "frames16")))
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "it is not the Cosmos DV8x8x8 decoder" in lines[0], bad.stderr
    asked = {}

    def full(*args, **kwargs):
        asked.update(kwargs, args=args)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", full)
    result = CliRunner().invoke(app, ["data", "download", "--decoder", "--cache-dir", str(tmp_path / "c")])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "is full: free space" in lines[0], result.stderr
    assert asked["args"] == ("nvidia/Cosmos-Tokenizer-DV8x8x8", "decoder.jit")  # that file only

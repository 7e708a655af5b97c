"""The real data from the Hugging Face Hub: `hwm-tui data download`.

The 1X World Model Challenge repository also holds older versions (v1.1: other
tokens, another layout); only the v2.0 folders asked for are fetched. The bytes
go to the Hub client's own cache (resumable, shared with every other Hugging Face
tool, $HF_HUB_CACHE or --cache-dir), and the folder the user names gets one link
per split into it, so `--data DIR/train_v2.0` stays the same across revisions.

Every way a download can fail is one line that says what to do; whatever was
fetched stays in the cache, and the same command resumes from it.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

REPO_ID = "1x-technologies/worldmodel"
SPLIT_FOLDERS = {"train": "train_v2.0", "val": "val_v2.0"}
SPLIT_CHOICES = ("train", "val", "both")
# The Cosmos tokenizer's decoder (pixels/decoder.py): one TorchScript file of its model repository.
DECODER_REPO = "nvidia/Cosmos-Tokenizer-DV8x8x8"
DECODER_FILE = "decoder.jit"
RESUME = "rerun the same command: it resumes, and what was downloaded is kept"


@dataclass
class Download:
    repo: str
    revision: str
    snapshot: Path  # the cache's folder of this revision
    splits: dict[str, Path]  # "train"/"val" -> the link in the user's folder


def split_names(which: str) -> list[str]:
    if which not in SPLIT_CHOICES:
        raise DataError(f"--split {which!r}: choose train, val or both")
    return ["train", "val"] if which == "both" else [which]


def download(
    to: Path, which: str = "both", *, repo: str = REPO_ID, revision: str = "main", cache_dir: Path | None = None
) -> Download:
    names = split_names(which)
    for name in names:  # before fetching: a folder in the way is found in a second, not after hours
        _check_free(to / SPLIT_FOLDERS[name])
    snapshot = Path(_fetch(repo, revision, [SPLIT_FOLDERS[n] for n in names], cache_dir))
    splits = {}
    for name in names:
        source = snapshot / SPLIT_FOLDERS[name]
        if not source.is_dir():
            raise DataError(
                f"revision {revision!r} of {repo} has no {SPLIT_FOLDERS[name]}/ folder: it is not a "
                "v2.0 revision; give --revision main (or a commit that holds the v2.0 splits)"
            )
        splits[name] = _link(to, SPLIT_FOLDERS[name], source)
    return Download(repo, revision, snapshot, splits)


def _fetch(repo: str, revision: str, folders: list[str], cache_dir: Path | None) -> str:
    """snapshot_download of `folders` only, every failure turned into one DataError."""

    def fetch(huggingface_hub) -> str:
        return huggingface_hub.snapshot_download(
            repo_id=repo,
            repo_type="dataset",
            revision=revision,
            allow_patterns=[f"{folder}/*" for folder in folders],
            cache_dir=cache_dir,
        )

    return hub_call(fetch, repo, revision, cache_dir, page=f"https://huggingface.co/datasets/{repo}", kind="dataset")


def hub_call(call, repo: str, revision: str, cache_dir: Path | None, *, page: str, kind: str) -> str:
    """`call(huggingface_hub)` (a download into the Hub cache), every failure one DataError."""
    try:
        import huggingface_hub
        from huggingface_hub import constants, errors
    except ImportError:
        raise DataError("data download needs the Hugging Face Hub client: pip install 'hwm-tui[hub]'") from None
    where = cache_dir or Path(constants.HF_HUB_CACHE)
    try:
        return call(huggingface_hub)
    except KeyboardInterrupt:
        raise DataError(f"download interrupted: {RESUME} in {where}") from None
    except errors.GatedRepoError:
        raise DataError(
            f"{repo} is gated: accept its terms at {page}, then log in (hf auth login) or set HF_TOKEN, and {RESUME}"
        ) from None
    except errors.RepositoryNotFoundError:
        check = f"check --repo (default {REPO_ID}), or " if kind == "dataset" else ""
        raise DataError(
            f"{repo} is not a {kind} repository on the Hub, or it is private: {check}log in (hf auth login) "
            "or set HF_TOKEN"
        ) from None
    except errors.RevisionNotFoundError:
        raise DataError(
            f"revision {revision!r} is not in {repo}: give a branch, tag or commit hash listed at {page}/commits/main"
        ) from None
    except errors.LocalEntryNotFoundError:  # offline, or the Hub unreachable, and not (all) in the cache
        if constants.HF_HUB_OFFLINE:
            raise DataError(
                f"HF_HUB_OFFLINE is set and {repo} ({revision}) is not complete in the cache {where}: "
                f"unset HF_HUB_OFFLINE, then {RESUME}"
            ) from None
        raise DataError(f"cannot reach the Hugging Face Hub (no network?): connect, then {RESUME} in {where}") from None
    except errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "an error")
        raise DataError(f"the Hub answered {status} ({_first_line(exc)}): {RESUME}") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DataError(
                f"the disk holding {where} is full: free space, or put the cache on a larger disk with "
                f"--cache-dir (or HF_HOME), then {RESUME}"
            ) from None
        if isinstance(exc, ConnectionError) or exc.errno in (errno.ECONNREFUSED, errno.ECONNRESET, errno.ENETUNREACH):
            raise DataError(f"the connection to the Hub failed ({_first_line(exc)}): {RESUME}") from None
        raise DataError(f"cannot write {exc.filename or where} ({exc.strerror or exc}): {RESUME}") from None
    except Exception as exc:
        if _is_network_error(exc):
            raise DataError(f"the connection to the Hub failed ({_first_line(exc)}): {RESUME}") from None
        raise


def _is_network_error(exc: Exception) -> bool:
    """The HTTP client's transport errors (httpx2 today, httpx or requests in other versions),
    named by their module so no client is imported here."""
    kind = type(exc)
    return kind.__module__.split(".")[0] in ("httpx2", "httpx", "httpcore", "requests", "urllib3") and any(
        word in kind.__name__ for word in ("Connect", "Timeout", "Network", "Proxy", "Transport", "Protocol")
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_free(link: Path) -> None:
    if link.exists() and not link.is_symlink():
        raise DataError(
            f"{link} exists and is not a link this command made: pass another --to, or move it away "
            "(this command links each split into the Hub cache)"
        )


def _link(to: Path, name: str, source: Path) -> Path:
    """to/name -> source, replaced at once if it is a link already (another revision)."""
    link = to / name
    _check_free(link)
    try:
        to.mkdir(parents=True, exist_ok=True)
        temporary = to / f".{name}.link-{os.getpid()}"
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(source.resolve(), target_is_directory=True)
        os.replace(temporary, link)
    except OSError as exc:
        raise DataError(f"cannot make {link} ({exc.strerror or exc}): pass a writable --to") from None
    return link


def download_decoder(*, revision: str = "main", cache_dir: Path | None = None) -> Path:
    """`decoder.jit` (and only it) of the Cosmos DV8x8x8 tokenizer into the Hub cache, where
    pixels.decoder.find_decoder finds it afterwards. The client writes to a temporary file and
    moves it into place whole, so an interrupted or failed download is never found as complete."""

    def fetch(huggingface_hub) -> str:
        return huggingface_hub.hf_hub_download(DECODER_REPO, DECODER_FILE, revision=revision, cache_dir=cache_dir)

    return Path(
        hub_call(fetch, DECODER_REPO, revision, cache_dir, page=f"https://huggingface.co/{DECODER_REPO}", kind="model")
    )

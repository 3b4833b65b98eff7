"""The local Hugging Face cache: where it is, and which directories hold a repository.

The cache lays a model repository out as ``models--<org>--<name>/`` with
``snapshots/<revision>/<file>`` symlinks into ``blobs/<digest>``. Scanning the
snapshot directories reports every file under its repository name (the inventory
follows the links), once per cached revision. Nothing here touches the network.

>>> hf_cache_dir()                              # doctest: +SKIP
PosixPath('/home/me/.cache/huggingface/hub')
>>> hf_cache_paths("org/model")                 # doctest: +SKIP
[PosixPath('.../models--org--model/snapshots/0123abcd...')]
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from modelseal.errors import UsageError

__all__ = ["hf_cache_dir", "hf_cache_paths", "repo_folder_name"]

# Hugging Face repo ids: an optional namespace, then a name; no "..", no "--" games.
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


def hf_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The hub cache directory, resolved as ``huggingface_hub`` does.

    ``HF_HUB_CACHE``, then the legacy ``HUGGINGFACE_HUB_CACHE``, then
    ``$HF_HOME/hub``, then ``$XDG_CACHE_HOME/huggingface/hub``, then
    ``~/.cache/huggingface/hub``.
    """
    env = os.environ if environ is None else environ
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(variable):
            return Path(env[variable]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    xdg = env.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def repo_folder_name(repo_id: str) -> str:
    """The cache folder of a model repository: ``org/name`` -> ``models--org--name``.

    Raises :class:`UsageError` for something that is not a repository id.
    """
    if not _REPO_ID.match(repo_id) or ".." in repo_id or "--" in repo_id:
        raise UsageError(
            f"{repo_id!r} is not a Hugging Face repository id",
            advice="use the form org/name, e.g. --hf-cache=meta-llama/Llama-3.2-1B",
        )
    return "models--" + repo_id.replace("/", "--")


def hf_cache_paths(repo_id: str | None = None, *, cache_dir: Path | None = None) -> list[Path]:
    """The snapshot directories to scan: of ``repo_id``, or of every cached model.

    Raises :class:`UsageError` when the cache, the repository or any snapshot of
    it is missing.
    """
    root = cache_dir if cache_dir is not None else hf_cache_dir()
    if not root.is_dir():
        raise UsageError(
            f"no Hugging Face cache at {root}",
            advice="set HF_HUB_CACHE or HF_HOME, or download a model first",
        )
    if repo_id is not None:
        repo_dir = root / repo_folder_name(repo_id)
        if not repo_dir.is_dir():
            raise UsageError(
                f"{repo_id} is not in the Hugging Face cache at {root}",
                advice="check the spelling, or download it with huggingface-cli download",
            )
        repos = [repo_dir]
    else:
        repos = sorted(p for p in root.glob("models--*") if p.is_dir())
        if not repos:
            raise UsageError(f"the Hugging Face cache at {root} holds no models")
    snapshots = [
        snapshot
        for repo in repos
        for snapshot in sorted((repo / "snapshots").glob("*"))
        if snapshot.is_dir()
    ]
    if not snapshots:
        what = repo_id if repo_id is not None else "any cached model"
        raise UsageError(
            f"no downloaded snapshot of {what} in {root}",
            advice="the download may be incomplete; download the model again",
        )
    return snapshots

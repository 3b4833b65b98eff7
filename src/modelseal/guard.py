"""Verify-before-load guards: check files against a policy before a framework loads them.

::

    import modelseal.guard
    modelseal.guard.install(policy="strict", keys=["publisher.pub"])
    torch.load("model.pt", weights_only=True)   # checked first; GuardError if denied

or, without code changes, ``MODELSEAL_POLICY=policy.yaml`` in the environment plus
``import modelseal.guard`` (e.g. in ``sitecustomize.py``) installs the guard on import.

Wrapped when importable: ``torch.load``, ``safetensors.safe_open``,
``safetensors.torch.load_file``/``load``, ``safetensors.numpy.load_file``/``load``,
and ``transformers.PreTrainedModel.from_pretrained`` (which also covers
sentence-transformers). Decisions are cached by content digest, so loading the
same bytes again costs a hash, not a rescan.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelseal.errors import PolicyError
from modelseal.policy import Decision, Policy, check, resolve_policy

__all__ = ["GuardError", "install", "installed", "uninstall"]


class GuardError(PolicyError):
    """A load was refused because the file does not pass the policy."""

    def __init__(self, decision: Decision) -> None:
        reasons = "; ".join(f"{c}: {r.message}" for c, r in decision.reasons)
        super().__init__(
            f"modelseal refused to load {decision.path} under policy "
            f"'{decision.policy}': {reasons}",
            advice=f"run `modelseal check {decision.path} --policy {decision.policy}` for details",
        )
        self.decision = decision


@dataclass
class _Guard:
    policy: Policy
    keys: tuple[Path, ...]
    #: (owner, name, what owner.__dict__ held or _ABSENT) for every wrapped loader.
    originals: list[tuple[Any, str, Any]] = field(default_factory=list)
    _digests: dict[tuple[str, int, int, int], str] = field(default_factory=dict)
    _decisions: dict[str, Decision] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure_allowed(self, target: Path) -> Decision:
        """Check ``target`` (file or directory), using the digest cache; raise if denied."""
        target = self._subject(target.resolve())
        digest = self._digest(target)
        with self._lock:
            decision = self._decisions.get(digest)
        if decision is None:
            decision = check(target, self.policy, keys=self.keys)
            with self._lock:
                self._decisions[digest] = decision
        if not decision.allowed:
            raise GuardError(decision)
        return decision

    def _subject(self, path: Path) -> Path:
        # A file inside a signed directory is checked as part of that directory.
        if path.is_file() and self.policy.signature.required:
            from modelseal.integrity import default_signature_path

            if not default_signature_path(path).exists() and (
                default_signature_path(path.parent).exists()
            ):
                return path.parent
        return path

    def _digest(self, path: Path) -> str:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        combined = hashlib.sha256()
        for file in files:
            info = file.stat()
            key = (str(file), info.st_size, info.st_mtime_ns, info.st_ino)
            with self._lock:
                digest = self._digests.get(key)
            if digest is None:
                digest = _sha256_file(file)
                with self._lock:
                    self._digests[key] = digest
            combined.update(
                f"{file.relative_to(path) if path.is_dir() else ''}\0{digest}\n".encode()
            )
        return combined.hexdigest()

    def ensure_stream_allowed(self, stream: Any) -> None:
        """Check a file object by copying it (bounded by its size) to a temporary file."""
        name = getattr(stream, "name", None)
        if isinstance(name, str) and os.path.isfile(name):
            self.ensure_allowed(Path(name))
            return
        start = stream.tell()
        with tempfile.TemporaryDirectory(prefix="modelseal-guard-") as folder:
            copy = Path(folder) / "stream"
            with open(copy, "wb") as handle:
                while chunk := stream.read(1024 * 1024):
                    handle.write(chunk)
            stream.seek(start)
            self.ensure_allowed(copy)


_active: _Guard | None = None
_ABSENT = object()


def install(
    policy: Policy | str | os.PathLike[str] = "standard",
    *,
    keys: Sequence[str | os.PathLike[str]] = (),
) -> None:
    """Wrap the loaders of every importable framework so they check files first.

    ``policy`` is a :class:`Policy`, a built-in name or a policy file. Calling
    ``install`` again replaces the previous guard.
    """
    global _active
    uninstall()
    resolved = policy if isinstance(policy, Policy) else resolve_policy(os.fspath(policy))
    guard = _Guard(resolved, tuple(Path(k) for k in keys))
    for module_name, attribute, kind in _TARGETS:
        if importlib.util.find_spec(module_name.split(".")[0]) is None:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        owner, name = _resolve_owner(module, attribute)
        if owner is None:
            continue
        # The raw attribute (a classmethod object, not a method bound to ``owner``):
        # restoring a bound method would make subclasses call it with the wrong class.
        original = inspect.getattr_static(owner, name)
        guard.originals.append((owner, name, vars(owner).get(name, _ABSENT)))
        setattr(owner, name, _WRAPPERS[kind](guard, original))
    _active = guard


def uninstall() -> None:
    """Restore every wrapped loader."""
    global _active
    if _active is None:
        return
    for owner, name, original in reversed(_active.originals):
        if original is _ABSENT:  # it was inherited: drop our override
            delattr(owner, name)
        else:
            setattr(owner, name, original)
    _active = None


def installed() -> bool:
    """Whether a guard is active."""
    return _active is not None


def _resolve_owner(module: Any, dotted: str) -> tuple[Any, str]:
    owner = module
    *parents, name = dotted.split(".")
    for part in parents:
        owner = getattr(owner, part, None)
        if owner is None:
            return None, name
    return (owner, name) if hasattr(owner, name) else (None, name)


def _wrap_path_first(guard: _Guard, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def guarded(source: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(source, (str, os.PathLike)):
            guard.ensure_allowed(Path(os.fspath(source)))
        elif isinstance(source, (bytes, bytearray)):
            with tempfile.TemporaryDirectory(prefix="modelseal-guard-") as folder:
                copy = Path(folder) / "buffer"
                copy.write_bytes(bytes(source))
                guard.ensure_allowed(copy)
        elif hasattr(source, "read") and hasattr(source, "seek"):
            guard.ensure_stream_allowed(source)
        return original(source, *args, **kwargs)

    return guarded


def _wrap_from_pretrained(guard: _Guard, original: Any) -> Any:
    function = original.__func__

    @functools.wraps(function)
    def guarded(cls: Any, name_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        guard.ensure_allowed(_local_model_dir(name_or_path, kwargs))
        return function(cls, name_or_path, *args, **kwargs)

    return classmethod(guarded)


def _local_model_dir(name_or_path: Any, kwargs: dict[str, Any]) -> Path:
    path = Path(os.fspath(name_or_path))
    if path.exists():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                str(name_or_path),
                revision=kwargs.get("revision"),
                cache_dir=kwargs.get("cache_dir"),
                local_files_only=True,
            )
        )
    except Exception as exc:  # any hub error means: not available locally
        raise PolicyError(
            f"{name_or_path}: not on disk, so it cannot be checked before loading",
            advice="download it first (e.g. `hf download`), check it, then load the local copy",
        ) from exc


_WRAPPERS: dict[str, Callable[[_Guard, Any], Any]] = {
    "path": _wrap_path_first,
    "from_pretrained": _wrap_from_pretrained,
}

# (module, attribute, wrapper kind); attributes may be dotted (Class.method).
_TARGETS: tuple[tuple[str, str, str], ...] = (
    ("torch", "load", "path"),
    ("safetensors", "safe_open", "path"),
    ("safetensors.torch", "load_file", "path"),
    ("safetensors.torch", "load", "path"),
    ("safetensors.numpy", "load_file", "path"),
    ("safetensors.numpy", "load", "path"),
    ("transformers.modeling_utils", "safe_open", "path"),
    ("transformers.modeling_utils", "PreTrainedModel.from_pretrained", "from_pretrained"),
)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


if os.environ.get("MODELSEAL_POLICY"):
    install(os.environ["MODELSEAL_POLICY"])

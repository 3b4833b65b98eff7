"""The ``oci://`` side of push, pull, verify, scan and sbom (dispatched from those commands)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from modelseal.oci.reference import is_oci_reference

__all__ = [
    "ModelLocation",
    "local_copies",
    "plain_http_default",
    "pull_command_oci",
    "push_command_oci",
    "relabel",
    "verify_command_oci",
]


class ModelLocation(click.ParamType):  # type: ignore[type-arg]
    """A local path (as :class:`Path`) or an ``oci://`` reference (kept as text).

    ``Path`` would fold the ``//`` of ``oci://``, so references are kept as ``str``.
    """

    name = "path"

    def __init__(self, exists: bool = False) -> None:
        self.exists = exists

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and is_oci_reference(value):
            return value
        path = Path(value)
        if self.exists and not path.exists() and not path.is_symlink():
            self.fail(f"Path '{value}' does not exist.", param, ctx)
        return path


def plain_http_default() -> bool:
    """``MODELSEAL_OCI_PLAIN_HTTP=1`` (for scan/sbom of loopback test registries)."""
    return os.environ.get("MODELSEAL_OCI_PLAIN_HTTP") == "1"


def _bar(label: str) -> contextlib.AbstractContextManager[Any]:
    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    @contextlib.contextmanager
    def bar() -> Iterator[Any]:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            transient=True,
        ) as progress:
            task = progress.add_task(label, total=None)
            yield lambda done, total: progress.update(task, completed=done, total=total)

    return bar()


def push_command_oci(
    model_dir: Path,
    reference: str,
    *,
    key: str | None,
    signature: str | None,
    provenance: str | None,
    plain_http: bool,
    workers: int,
) -> None:
    """``modelseal push DIR oci://...``."""
    from modelseal.oci import push_oci

    with _bar("push") as progress:
        result = push_oci(
            model_dir,
            reference,
            key=key,
            signature=signature,
            provenance=provenance,
            plain_http=plain_http or plain_http_default(),
            workers=workers,
            progress=progress,
        )
    click.echo(
        f"pushed {result.reference} ({result.layers} layers, "
        f"{result.bytes_uploaded / 1e6:.1f} MB uploaded, {result.bytes_skipped / 1e6:.1f} MB "
        f"already there, {result.seconds:.1f} s)"
    )
    how = "referrers API" if result.referrers_api else "referrers tag fallback"
    for artifact_type in result.referrers:
        click.echo(f"  attached: {artifact_type} ({how})")
    from modelseal.oci.modelpack import BUNDLE_TYPE

    if BUNDLE_TYPE not in result.referrers:
        click.echo(
            "warning: pushed unsigned (pull refuses it without --allow-unsigned); "
            "sign with --key PRIV.pem",
            err=True,
        )


def pull_command_oci(
    reference: str,
    dest: Path,
    *,
    keys: Sequence[str],
    allow_unsigned: bool,
    plain_http: bool,
    workers: int,
) -> None:
    """``modelseal pull oci://... DEST``."""
    from modelseal.oci import pull_oci

    with _bar("pull") as progress:
        result = pull_oci(
            reference,
            dest,
            keys=keys,
            allow_unsigned=allow_unsigned,
            plain_http=plain_http or plain_http_default(),
            workers=workers,
            progress=progress,
        )
    click.echo(
        f"pulled {result.reference} into {result.destination} ({result.files} files, "
        f"{result.bytes_downloaded / 1e6:.1f} MB, {result.seconds:.1f} s)"
    )
    for check in result.checks:
        click.echo(f"  ok: {check}")


def verify_command_oci(
    reference: str, keys: Sequence[Path], *, plain_http: bool, output_format: str
) -> int:
    """``modelseal verify oci://... --key PUB.pem``: every pull check, nothing written."""
    import json

    from modelseal.errors import VerificationError
    from modelseal.oci import verify_oci

    try:
        result = verify_oci(reference, keys=keys, plain_http=plain_http or plain_http_default())
    except VerificationError as exc:
        if output_format == "json":
            click.echo(json.dumps({"ok": False, "reference": reference, "reasons": [exc.message]}))
        else:
            click.echo(f"INVALID: {exc.message}")
        return 1
    if output_format == "json":
        click.echo(
            json.dumps(
                {"ok": True, "reference": result.reference, "checks": list(result.checks)},
                indent=2,
            )
        )
    else:
        click.echo(f"VALID: {result.reference}")
        for check in result.checks:
            click.echo(f"  ok: {check}")
    return 0


@contextlib.contextmanager
def local_copies(paths: Sequence[Path | str]) -> Iterator[tuple[list[Path], dict[str, str]]]:
    """Local paths for ``paths``: ``oci://`` references are fetched into temporary
    directories (layer digests checked). Yields the paths and a map from each
    temporary prefix back to the reference, for the report."""
    from modelseal.oci import fetch_oci

    with contextlib.ExitStack() as stack:
        local: list[Path] = []
        labels: dict[str, str] = {}
        for item in paths:
            if isinstance(item, str):
                copy = stack.enter_context(fetch_oci(item, plain_http=plain_http_default()))
                labels[str(copy)] = item
                local.append(copy)
            else:
                local.append(item)
        yield local, labels


def relabel(report: Any, labels: dict[str, str]) -> Any:
    """The scan report with temporary paths shown as the ``oci://`` references they came from."""
    if not labels:
        return report

    def name(path: str) -> str:
        for prefix, ref in labels.items():
            if path == prefix:
                return ref
            if path.startswith(prefix + "/"):
                return f"{ref}/{path[len(prefix) + 1 :]}"
        return path

    results = tuple(dataclasses.replace(r, path=name(r.path)) for r in report.results)
    return dataclasses.replace(report, results=results)

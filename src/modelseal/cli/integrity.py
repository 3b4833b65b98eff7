"""``modelseal keygen``, ``sign``, ``verify``, ``attest`` and ``provenance show``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from modelseal.cli._common import table_or_json_option
from modelseal.cli.oci import ModelLocation
from modelseal.errors import UsageError

__all__ = [
    "attest_command",
    "keygen_command",
    "provenance_group",
    "sign_command",
    "verify_command",
]

_PASSPHRASE_ENV = "MODELSEAL_KEY_PASSPHRASE"

_passphrase_env_option = click.option(
    "--passphrase-env",
    default=_PASSPHRASE_ENV,
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the private key's passphrase (else: prompt).",
)
_progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar on standard error (default: when it is a terminal).",
)


def _passphrase(key: Path, env_name: str) -> str | None:
    """The passphrase for ``key``: from the environment, or a prompt if the key is encrypted."""
    value = os.environ.get(env_name)
    if value:
        return value
    try:
        encrypted = b"ENCRYPTED" in key.read_bytes()[:4096]
    except OSError:
        return None
    if not encrypted:
        return None
    if not sys.stdin.isatty():
        raise UsageError(
            f"{key}: private key is encrypted and no passphrase was given",
            advice=f"set ${env_name} or run in a terminal to be prompted",
        )
    secret: str = click.prompt(f"Passphrase for {key}", hide_input=True, err=True)
    return secret


@contextmanager
def _progress(show: bool | None, label: str) -> Iterator[Callable[[int, int], None] | None]:
    if not (sys.stderr.isatty() if show is None else show):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@click.command("keygen")
@click.option(
    "-o",
    "--output",
    "prefix",
    default="modelseal",
    show_default=True,
    help="Write PREFIX.priv.pem and PREFIX.pub.pem.",
)
@click.option(
    "--type",
    "key_type",
    type=click.Choice(["ec-p256", "ec-p384", "ec-p521", "ed25519", "rsa-pss"]),
    default="ec-p256",
    show_default=True,
    help="Key type; EC keys interoperate with model_signing, Ed25519/RSA-PSS are extensions.",
)
@click.option("--encrypt", is_flag=True, help="Protect the private key with a passphrase.")
@_passphrase_env_option
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen_command(
    prefix: str, key_type: str, encrypt: bool, passphrase_env: str, force: bool
) -> int:
    """Write a signing key pair (EC P-256 by default).

    With --encrypt the private key is encrypted with the passphrase from
    $MODELSEAL_KEY_PASSPHRASE (or --passphrase-env), else one typed at a prompt.
    """
    from modelseal.integrity import generate_keypair

    secret = None
    if encrypt:
        secret = os.environ.get(passphrase_env) or click.prompt(
            "Passphrase", hide_input=True, confirmation_prompt=True, err=True
        )
    pair = generate_keypair(prefix, key_type=key_type, passphrase=secret, overwrite=force)
    click.echo(f"private key: {pair.private_key}{' (encrypted)' if pair.encrypted else ''}")
    click.echo(f"public key:  {pair.public_key}")
    click.echo(f"key hint:    sha256:{pair.hint}")
    return 0


@click.command("sign")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--key", "-k", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Private key (PEM).")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Signature file [default: PATH.sig next to the model].")  # fmt: skip
@click.option("--hash", "hash_algorithm", type=click.Choice(["sha256", "blake2b", "blake3"]),
              default="sha256", show_default=True, help="Hash of each file or shard.")  # fmt: skip
@click.option("--method", type=click.Choice(["files", "shards"]), default="files",
              show_default=True, help="A digest per file, or per --shard-size shard.")  # fmt: skip
@click.option("--shard-size", type=click.IntRange(1), default=1_000_000_000, show_default=True,
              help="Shard size in bytes (shards method).")  # fmt: skip
@click.option("--ignore", multiple=True, metavar="PATH|GLOB",
              help="Leave a path or glob out of the signature (repeatable).")  # fmt: skip
@click.option("--previous", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Earlier signature: reuse digests of unchanged files.")  # fmt: skip
@click.option("--allow-symlinks", is_flag=True, help="Sign the files symlinks point to.")
@click.option("--tensors/--no-tensors", default=True, show_default=True,
              help="Also sign a per-tensor manifest of safetensors/GGUF files.")  # fmt: skip
@click.option("--tensor-hash", type=click.Choice(["blake3", "sha256"]), default="blake3",
              show_default=True,
              help="Hash of each tensor in the manifest (sha256: the old leaves).")  # fmt: skip
@click.option("--certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sign in certificate mode with this X.509 certificate (PEM).")  # fmt: skip
@click.option("--chain", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Intermediate certificates for --certificate (repeatable).")  # fmt: skip
@_passphrase_env_option
@_progress_option
def sign_command(
    path: Path,
    key: Path,
    output: Path | None,
    hash_algorithm: str,
    method: str,
    shard_size: int,
    ignore: tuple[str, ...],
    previous: Path | None,
    allow_symlinks: bool,
    tensors: bool,
    tensor_hash: str,
    certificate: Path | None,
    chain: tuple[Path, ...],
    passphrase_env: str,
    progress: bool | None,
) -> int:
    """Sign a model directory or file (OpenSSF model-signing v1 bundle).

    \b
    Examples:
      modelseal sign ./model --key release.priv.pem -o model.sig
      modelseal sign ./model --key k.pem --method shards --shard-size 100000000
      modelseal sign ./model --key k.pem --previous model.sig -o model.sig
    """
    from modelseal.integrity import sign

    secret = _passphrase(key, passphrase_env)
    with _progress(progress, "hashing") as on_progress:
        result = sign(
            path,
            key=key,
            output=output,
            hash_algorithm=hash_algorithm,
            method=method,
            shard_size=shard_size,
            ignore=ignore,
            previous=previous,
            allow_symlinks=allow_symlinks,
            tensors=tensors,
            tensor_hash=tensor_hash,
            passphrase=secret,
            certificate=certificate,
            chain=chain,
            progress=on_progress,
        )
    mib = result.bytes_hashed / 2**20
    click.echo(
        f"signed {result.model_name}: {result.files} files, root sha256:{result.root_digest}"
    )
    click.echo(
        f"  {result.method}/{result.hash_algorithm}, {result.signer}, "
        f"{mib:,.1f} MiB hashed in {result.seconds:.2f}s -> {result.signature_path}"
    )
    if result.reused:
        click.echo(
            f"  reused digests of {len(result.reused)} unchanged file(s) "
            f"({result.bytes_reused / 2**20:,.1f} MiB) from --previous"
        )
    if result.ignored:
        click.echo(f"  left out (ignored): {', '.join(result.ignored[:10])}")
    if result.tensor_files:
        click.echo(f"  per-tensor manifests: {', '.join(result.tensor_files)}")
    if not result.interoperable:
        click.echo(
            "  note: model_signing cannot verify this key type or hash (modelseal extension)"
        )
    return 0


@click.command("verify")
@click.argument("path", type=ModelLocation(exists=True))
@click.option("--key", "-k", type=click.Path(dir_okay=False, path_type=Path),
              help="Public key (PEM).")  # fmt: skip
@click.option("--signature", "-s", type=click.Path(dir_okay=False, path_type=Path),
              help="Signature file [default: PATH.sig].")  # fmt: skip
@click.option("--trust-root", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Trusted root certificates (certificate mode; repeatable).")  # fmt: skip
@click.option("--allow-unsigned", is_flag=True, help="Accept unsigned code files (ignored paths).")
@click.option("--allow-symlinks", is_flag=True, help="Follow symlinks instead of refusing them.")
@click.option("--tensors", is_flag=True, help="Name the tensors that changed in weight files.")
@click.option("--provenance", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also check this provenance attestation.")  # fmt: skip
@click.option("--expect-base-model", metavar="ID[@DIGEST]", help="Required base model.")
@click.option("--expect-dataset", multiple=True, metavar="NAME[@DIGEST]",
              help="Required dataset (repeatable).")  # fmt: skip
@click.option("--plain-http", is_flag=True,
              help="oci:// only: HTTP to a registry on this machine.")  # fmt: skip
@table_or_json_option()
@_progress_option
def verify_command(
    path: Path | str,
    key: Path | None,
    signature: Path | None,
    trust_root: tuple[Path, ...],
    allow_unsigned: bool,
    allow_symlinks: bool,
    tensors: bool,
    provenance: Path | None,
    expect_base_model: str | None,
    expect_dataset: tuple[str, ...],
    plain_http: bool,
    output_format: str,
    progress: bool | None,
) -> int:
    """Verify a model against its signature.

    Names every added, removed, changed and renamed file with digests, lists
    unsigned files, and fails on unsigned code unless --allow-unsigned.
    PATH may be oci://HOST/REPO:TAG: the artifact is checked as a pull would
    (layer digests, the attached signature with --key, the scan), nothing kept.

    \b
    Exit codes: 0 valid, 1 invalid, 2 usage error.
    """
    from modelseal.integrity import verify
    from modelseal.integrity.render import render_verify

    if isinstance(path, str):
        from modelseal.cli.oci import verify_command_oci

        if key is None:
            raise UsageError("verifying an oci:// artifact needs --key PUB.pem")
        return verify_command_oci(path, [key], plain_http=plain_http, output_format=output_format)
    if (provenance is None) and (expect_base_model or expect_dataset):
        raise UsageError("--expect-base-model/--expect-dataset need --provenance")
    with _progress(progress, "verifying") as on_progress:
        result = verify(
            path,
            key=key,
            signature=signature,
            trust_roots=trust_root,
            allow_unsigned=allow_unsigned,
            allow_symlinks=allow_symlinks,
            tensors=tensors,
            provenance=provenance,
            expect_base_model=expect_base_model,
            expect_dataset=expect_dataset,
            progress=on_progress,
        )
    click.echo(render_verify(result, output_format))
    return 0 if result.ok else 1


@click.command("attest")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--key", "-k", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Private key (PEM).")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Attestation file [default: PATH.provenance.sig].")  # fmt: skip
@click.option("--base-model", multiple=True, metavar="ID@DIGEST", help="Base model (repeatable).")
@click.option("--dataset", multiple=True, metavar="NAME@DIGEST", help="Dataset (repeatable).")
@click.option("--code", multiple=True, metavar="REPO@COMMIT", help="Training code.")
@click.option("--param", multiple=True, metavar="KEY=VALUE", help="Hyperparameter (repeatable).")
@click.option("--builder", default="https://modelseal.dev/builders/local", show_default=True,
              help="Builder id recorded in runDetails.")  # fmt: skip
@click.option("--signature", "-s", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Bind to this signature's root digest (no re-hash).")  # fmt: skip
@_passphrase_env_option
def attest_command(
    path: Path,
    key: Path,
    output: Path | None,
    base_model: tuple[str, ...],
    dataset: tuple[str, ...],
    code: tuple[str, ...],
    param: tuple[str, ...],
    builder: str,
    signature: Path | None,
    passphrase_env: str,
) -> int:
    """Sign the training provenance of a model (in-toto + SLSA Provenance v1)."""
    from modelseal.integrity import attest

    result = attest(
        path,
        key=key,
        output=output,
        base_model=base_model,
        datasets=dataset,
        code=code,
        params=param,
        builder=builder,
        signature=signature,
        passphrase=_passphrase(key, passphrase_env),
    )
    prov = result.provenance
    click.echo(f"attested {prov.model_name} (root sha256:{prov.root_digest}) -> {result.output}")
    return 0


@click.group("provenance")
def provenance_group() -> None:
    """Show signed training provenance."""


@provenance_group.command("show")
@click.argument("attestation", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "-k", type=click.Path(dir_okay=False, path_type=Path),
              help="Public key to authenticate it (else shown as unverified).")  # fmt: skip
@table_or_json_option()
def provenance_show(attestation: Path, key: Path | None, output_format: str) -> int:
    """Print the lineage recorded in a provenance attestation."""
    from modelseal.integrity.operations import make_verifier, read_bundle
    from modelseal.integrity.provenance import read_provenance

    verifier = make_verifier(key) if key is not None else None
    prov = read_provenance(read_bundle(attestation), verifier)
    status = "verified" if verifier is not None else "UNVERIFIED (no --key)"
    if output_format == "json":
        data: dict[str, Any] = prov.to_statement()
        data["verified"] = verifier is not None
        click.echo(json.dumps(data, indent=2))
        return 0
    lines = [
        f"model:       {prov.model_name}",
        f"root digest: sha256:{prov.root_digest}",
        f"signature:   {status}",
        f"builder:     {prov.builder}",
    ]
    for role, label in (("base_model", "base model"), ("dataset", "dataset"), ("code", "code")):
        lines.extend(f"{label + ':':<13}{dep}" for dep in prov.of_role(role))
    lines.extend(f"param:       {k} = {v}" for k, v in sorted(prov.parameters.items()))
    if prov.finished_on:
        lines.append(f"finished:    {prov.finished_on}")
    click.echo("\n".join(lines))
    return 0

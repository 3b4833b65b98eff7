"""``modelseal serve``, ``admin``, ``login``, ``push``, ``pull``, ``info``, ``search``.

A thin shell over :mod:`modelseal.registry`: parse options, call the library, print.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelseal.cli._common import table_or_json_option
from modelseal.errors import UsageError
from modelseal.registry.settings import DEFAULT_DATA_DIR, RegistrySettings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.client import Progress, RegistryClient

__all__ = [
    "admin_group",
    "info_command",
    "login_command",
    "pull_command",
    "push_command",
    "search_command",
    "serve_command",
]

_data_option = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    envvar="MODELSEAL_REGISTRY_DATA",
    show_default=True,
    help="Directory for the embedded SQLite database, local blobs and upload staging.",
)
_db_option = click.option(
    "--db",
    "db_url",
    default=None,
    envvar="MODELSEAL_REGISTRY_DB",
    help="Database URL (default: SQLite under --data), e.g. postgresql+psycopg://u@host/db.",
)
_registry_option = click.option(
    "--registry",
    "registry_url",
    default=None,
    envvar="MODELSEAL_REGISTRY",
    help="Registry URL (default: the last one you logged in to).",
)
_format_option = table_or_json_option()


@click.command("serve")
@_data_option
@_db_option
@click.option(
    "--blobs",
    default=None,
    envvar="MODELSEAL_REGISTRY_BLOBS",
    help="Blob storage: a directory or s3://BUCKET/PREFIX (default: DATA/blobs).",
)
@click.option(
    "--s3-endpoint",
    default=None,
    envvar="MODELSEAL_REGISTRY_S3_ENDPOINT",
    help="S3-compatible endpoint URL (MinIO, Ceph); AWS when omitted.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8600, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--max-file-size",
    default=64 * 1024**3,
    show_default=True,
    type=click.IntRange(1),
    help="Largest file accepted in an upload, in bytes.",
)
@click.option(
    "--log-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    envvar="MODELSEAL_REGISTRY_LOG_KEY",
    help="Transparency-log signing key (PEM; default: DATA/log-key.priv.pem, created on first "
    "start). Every replica must use the same key.",
)
@click.option("--no-migrate", is_flag=True, help="Do not upgrade the database schema at start.")
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="ADDRESS",
    help="A reverse proxy (IP or CIDR) whose X-Forwarded-For header gives the client address "
    "(repeatable). Without it the header is ignored and the peer address counts.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve_command(
    data: Path,
    db_url: str | None,
    blobs: str | None,
    s3_endpoint: str | None,
    host: str,
    port: int,
    max_file_size: int,
    log_key: Path | None,
    no_migrate: bool,
    trusted_proxies: tuple[str, ...],
    log_level: str,
) -> None:
    """Run the model registry server.

    With no options it needs no set-up: SQLite and blobs under ./modelseal-registry.
    Create the first user with `modelseal admin create-user NAME --admin` and a token
    with `modelseal admin token create NAME`.
    """
    import logging
    import socket

    import uvicorn

    from modelseal.registry.app import create_app
    from modelseal.registry.db.session import create_engine_for, migrate, session_factory
    from modelseal.registry.publish import reopen_interrupted_commits

    try:  # a busy port is one line and exit 2, before any banner or uvicorn traceback
        with socket.create_server((host, port), reuse_port=False):
            pass
    except OSError as exc:
        from modelseal.errors import UsageError

        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another --port)"
        ) from exc
    settings = RegistrySettings(
        data_dir=data,
        db_url=db_url,
        blobs=blobs,
        s3_endpoint_url=s3_endpoint,
        max_file_bytes=max_file_size,
        log_key=log_key,
    )
    data.mkdir(parents=True, exist_ok=True)
    if not no_migrate:
        migrate(settings.database_url)
    engine = create_engine_for(settings.database_url)
    try:
        with session_factory(engine)() as session:
            reopen_interrupted_commits(session)
    finally:
        engine.dispose()
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    app = create_app(settings)
    click.echo(f"modelseal registry on http://{host}:{port} (API docs at /docs)", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default, which lets any local
        # client pick the address the rate limit counts: trust only named proxies.
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies) if trusted_proxies else "",
    )


# -- admin ----------------------------------------------------------------------------------------


@click.group("admin")
@_data_option
@_db_option
@click.pass_context
def admin_group(ctx: click.Context, data: Path, db_url: str | None) -> None:
    """Administer the registry directly in its database (users, tokens, keys)."""
    ctx.obj = RegistrySettings(data_dir=data, db_url=db_url)


@contextmanager
def _session(ctx: click.Context) -> Iterator[Session]:
    from modelseal.registry.db.session import create_engine_for, migrate, session_factory

    settings: RegistrySettings = ctx.obj
    migrate(settings.database_url)
    engine = create_engine_for(settings.database_url)
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@admin_group.command("migrate")
@click.pass_context
def migrate_command(ctx: click.Context) -> None:
    """Create or upgrade the database schema (Alembic)."""
    from modelseal.registry.db.session import migrate

    settings: RegistrySettings = ctx.obj
    click.echo(f"database at revision {migrate(settings.database_url)}")


@admin_group.command("create-user")
@click.argument("name")
@click.option("--admin", is_flag=True, help="A site admin (every role in every namespace).")
@click.option("--no-namespace", is_flag=True, help="Do not create a namespace of the same name.")
@click.pass_context
def create_user_command(ctx: click.Context, name: str, admin: bool, no_namespace: bool) -> None:
    """Create a user (and, by default, their own private namespace)."""
    from modelseal.registry import identity

    with _session(ctx) as session:
        identity.create_user(session, name, admin=admin, namespace=not no_namespace)
    click.echo(f"created user {name}" + (" (site admin)" if admin else ""))


@admin_group.command("create-namespace")
@click.argument("name")
@click.option("--public", is_flag=True, help="Anyone may read it, even without a token.")
@click.option(
    "--threshold",
    type=click.Choice(["info", "low", "medium", "high", "critical"]),
    default="low",
    show_default=True,
    help="Scan findings above this severity quarantine a version.",
)
@click.option("--no-require-signature", is_flag=True, help="Publish unsigned versions too.")
@click.option("--owner", default=None, help="A user who becomes the namespace's admin.")
@click.pass_context
def create_namespace_command(
    ctx: click.Context,
    name: str,
    public: bool,
    threshold: str,
    no_require_signature: bool,
    owner: str | None,
) -> None:
    """Create a namespace (an organisation)."""
    from modelseal.registry import identity

    with _session(ctx) as session:
        user = identity.get_user(session, owner) if owner else None
        identity.create_namespace(
            session,
            name,
            public=public,
            scan_threshold=threshold,
            require_signature=not no_require_signature,
            owner=user,
        )
    click.echo(f"created namespace {name}")


@admin_group.command("grant")
@click.argument("namespace")
@click.argument("user")
@click.argument("role", type=click.Choice(["reader", "publisher", "admin", "none"]))
@click.pass_context
def grant_command(ctx: click.Context, namespace: str, user: str, role: str) -> None:
    """Give USER ROLE in NAMESPACE (`none` removes them)."""
    from modelseal.registry import identity

    with _session(ctx) as session:
        identity.set_role(
            session,
            identity.get_namespace(session, namespace),
            identity.get_user(session, user),
            None if role == "none" else role,
        )
    click.echo(f"{user} is {role} in {namespace}")


@admin_group.group("token")
def token_group() -> None:
    """Create, list and revoke API tokens."""


@token_group.command("create")
@click.argument("user")
@click.option(
    "--namespace", "-n", "namespaces", multiple=True, help="Limit to these (default: all)."
)
@click.option(
    "--action",
    "-a",
    "actions",
    multiple=True,
    type=click.Choice(["read", "push", "admin"]),
    help="Allowed actions (default: read and push).",
)
@click.option(
    "--expires-days", type=click.FloatRange(min=0, min_open=True), default=90.0, show_default=True
)
@click.option("--no-expiry", is_flag=True, help="A token that never expires.")
@click.option("--description", default="")
@click.pass_context
def token_create_command(
    ctx: click.Context,
    user: str,
    namespaces: tuple[str, ...],
    actions: tuple[str, ...],
    expires_days: float,
    no_expiry: bool,
    description: str,
) -> None:
    """Create a token for USER and print it (it is shown only this once)."""
    from modelseal.registry import identity

    with _session(ctx) as session:
        token, secret = identity.create_token(
            session,
            identity.get_user(session, user),
            namespaces=namespaces or ("*",),
            actions=actions or ("read", "push"),
            expires_in=None if no_expiry else dt.timedelta(days=expires_days),
            description=description,
        )
        click.echo(f"token {token.id} for {user}, stored only as a hash:", err=True)
    click.echo(secret)


@token_group.command("revoke")
@click.argument("token_id", type=int)
@click.pass_context
def token_revoke_command(ctx: click.Context, token_id: int) -> None:
    """Revoke token TOKEN_ID."""
    from modelseal.registry import identity

    with _session(ctx) as session:
        identity.revoke_token(session, token_id)
    click.echo(f"revoked token {token_id}")


@token_group.command("list")
@click.argument("user")
@click.pass_context
def token_list_command(ctx: click.Context, user: str) -> None:
    """List USER's tokens (never their secrets)."""
    from modelseal.registry import identity
    from modelseal.registry.services.tokens import user_tokens

    with _session(ctx) as session:
        owner = identity.get_user(session, user)
        for token in user_tokens(session, owner.id):
            state = "revoked" if token.revoked_at else "active"
            expires = token.expires_at.isoformat() if token.expires_at else "never"
            click.echo(
                f"{token.id}\t{token.prefix}…\t{state}\texpires {expires}\t"
                f"{','.join(token.namespaces)}\t{','.join(token.actions)}\t{token.description}"
            )


@admin_group.command("trust-key")
@click.argument("namespace")
@click.argument("public_key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default="", help="A label for the key.")
@click.pass_context
def trust_key_command(ctx: click.Context, namespace: str, public_key: Path, name: str) -> None:
    """Trust signatures by PUBLIC_KEY (PEM) for NAMESPACE."""
    from cryptography.hazmat.primitives import serialization

    from modelseal.integrity.signing.keys import load_public_key
    from modelseal.registry import identity

    # the public key itself (also out of a certificate); a file that is none: one line, exit 2
    pem = (
        load_public_key(public_key)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    with _session(ctx) as session:
        key = identity.trust_key(
            session, identity.get_namespace(session, namespace), pem, name or public_key.stem
        )
    click.echo(f"{namespace} trusts key {key.fingerprint}")


@admin_group.command("trust-identity")
@click.argument("namespace")
@click.argument("identity_name", metavar="IDENTITY")
@click.argument("issuer")
@click.pass_context
def trust_identity_command(
    ctx: click.Context, namespace: str, identity_name: str, issuer: str
) -> None:
    """Record a Sigstore certificate identity (e.g. an e-mail and its OIDC issuer)."""
    from modelseal.registry import identity

    with _session(ctx) as session:
        identity.trust_identity(
            session, identity.get_namespace(session, namespace), identity_name, issuer
        )
    click.echo(f"{namespace} trusts certificates of {identity_name} from {issuer}")


@admin_group.command("fsck")
@click.option(
    "--blobs",
    default=None,
    envvar="MODELSEAL_REGISTRY_BLOBS",
    help="Blob storage: a directory or s3://BUCKET/PREFIX (default: DATA/blobs).",
)
@click.option(
    "--s3-endpoint",
    default=None,
    envvar="MODELSEAL_REGISTRY_S3_ENDPOINT",
    help="S3-compatible endpoint URL (MinIO, Ceph); AWS when omitted.",
)
@click.option("--quick", is_flag=True, help="Check presence and sizes only; do not hash blobs.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings (garbage) too, not only damage.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64))
@_format_option
@click.pass_context
def fsck_command(
    ctx: click.Context,
    blobs: str | None,
    s3_endpoint: str | None,
    quick: bool,
    strict: bool,
    workers: int,
    output_format: str,
) -> int:
    """Check blob storage against the database (and the transparency log); change nothing.

    Reports missing and corrupted blobs (every blob is re-hashed unless --quick),
    versions referencing rows that are gone, tags pointing at missing versions, and
    log entries that do not recompute; as warnings, orphan blobs, unreferenced blobs,
    abandoned uploads and stale staging.

    \b
    Exit codes: 0 no damage (warnings allowed unless --strict), 1 problems found, 2 usage.
    """
    import dataclasses

    from modelseal.registry.fsck import fsck_registry

    settings: RegistrySettings = dataclasses.replace(
        ctx.obj, blobs=blobs, s3_endpoint_url=s3_endpoint
    )
    with _progress("fsck") as progress:
        report = fsck_registry(settings, verify_bytes=not quick, workers=workers, progress=progress)
    if output_format == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _render_fsck(report)
    return 1 if report.errors or (strict and report.problems) else 0


def _render_fsck(report: Any) -> None:
    stats = report.stats
    log = "no log" if stats.log_entries is None else f"{stats.log_entries} log entries"
    hashed = (
        f"{stats.blobs_hashed} blobs ({stats.bytes_hashed / 1e6:.1f} MB) re-hashed"
        if report.bytes_verified
        else "sizes only (--quick)"
    )
    click.echo(
        f"{stats.versions} versions, {stats.blob_rows} blob rows, {stats.stored_objects} stored "
        f"objects, {stats.tags} tags, {stats.open_uploads} open uploads, {log}; {hashed} "
        f"in {stats.seconds:.1f} s"
    )
    if report.problems:
        kinds = max(len(p.kind.value) for p in report.problems)
        click.echo(f"{'SEVERITY':8}  {'KIND':{kinds}}  SUBJECT: PROBLEM")
        for problem in report.problems:
            click.echo(
                f"{problem.severity.value.upper():8}  {problem.kind.value:{kinds}}  "
                f"{problem.subject}: {problem.message}"
            )
    errors, warnings = len(report.errors), len(report.warnings)
    if report.clean:
        click.echo("registry OK")
    elif report.ok:
        click.echo(f"registry OK with {warnings} warning(s)")
    else:
        click.echo(f"registry DAMAGED: {errors} error(s), {warnings} warning(s)")


# -- client ---------------------------------------------------------------------------------------

_plain_http_option = click.option(
    "--plain-http",
    is_flag=True,
    help="oci:// only: talk HTTP, not HTTPS (a registry on this machine only, for tests).",
)


def _client(
    registry_url: str | None, workers: int = 4, max_log_age: float | None = None
) -> RegistryClient:
    from modelseal.registry.client import RegistryClient

    return RegistryClient.from_login(registry_url, workers=workers, max_log_age=max_log_age)


@contextmanager
def _progress(label: str) -> Iterator[Progress | None]:
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@click.command("login")
@click.argument("url")
@click.option(
    "--token",
    envvar="MODELSEAL_TOKEN",
    prompt=True,
    hide_input=True,
    help="An API token (from `modelseal admin token create`); prompted when omitted.",
)
@click.option(
    "--log-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Pin the registry's transparency-log public key (PEM, from its operator): tree heads "
    "must verify with it. Without it the key is trusted on first use.",
)
def login_command(url: str, token: str, log_key: Path | None) -> None:
    """Check TOKEN against the registry at URL and store it for this machine."""
    from modelseal.registry.client import ClientState, RegistryClient

    state = ClientState()
    with RegistryClient(url, token.strip(), state=state) as client:
        who = client.whoami()
        pinned = client.pin_log_key(log_key) if log_key is not None else None
    state.save_login(url.rstrip("/"), token.strip(), who.user)
    click.echo(f"logged in to {url} as {who.user} (token stored in {state.credentials_path})")
    if pinned is not None:
        click.echo(
            f"pinned the transparency-log key {pinned[:16]} (the registry's tree head verifies)"
        )


_max_log_age_option = click.option(
    "--max-log-age",
    type=click.FloatRange(min=0),
    default=None,
    envvar="MODELSEAL_MAX_LOG_AGE",
    help="Refuse a transparency-log tree head older than this many seconds "
    "(default 86400, one day; 0: no limit).",
)


@click.command("push")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("reference", metavar="NS/MODEL:VERSION|oci://HOST/REPO:TAG")
@click.option(
    "--key", type=click.Path(exists=True, dir_okay=False), help="Sign with this key first."
)
@click.option(
    "--signature",
    type=click.Path(exists=True, dir_okay=False),
    help="An existing signature bundle of MODEL_DIR.",
)
@click.option("--parent", default=None, help="The base model this version derives from.")
@click.option("--tag", "-t", "tags", multiple=True, help="Point these tags at the new version.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 32))
@click.option(
    "--provenance",
    type=click.Path(exists=True, dir_okay=False),
    help="oci:// only: attach this training-provenance attestation as a referrer.",
)
@_max_log_age_option
@_plain_http_option
@_registry_option
def push_command(
    model_dir: Path,
    reference: str,
    key: str | None,
    signature: str | None,
    parent: str | None,
    tags: tuple[str, ...],
    workers: int,
    provenance: str | None,
    max_log_age: float | None,
    plain_http: bool,
    registry_url: str | None,
) -> None:
    """Publish MODEL_DIR as NS/MODEL:VERSION (signed, scanned and gated by the registry).

    With oci://HOST[:PORT]/REPO[:TAG] the model goes to any OCI registry as a CNCF
    ModelPack artifact, with the signature (--key signs first) and the SBOM
    attached as OCI 1.1 referrers (see docs/oci.md).
    """
    from modelseal.oci.reference import is_oci_reference

    if is_oci_reference(reference):
        from modelseal.cli.oci import push_command_oci

        if parent or tags:
            raise UsageError("--parent and --tag apply to the modelseal registry, not oci://")
        push_command_oci(
            model_dir,
            reference,
            key=key,
            signature=signature,
            provenance=provenance,
            plain_http=plain_http,
            workers=workers,
        )
        return
    if provenance or plain_http:
        raise UsageError("--provenance and --plain-http apply to oci:// references only")
    with _client(registry_url, workers, max_log_age) as client, _progress("push") as progress:
        result = client.push(
            model_dir,
            reference,
            key=key,
            signature=signature,
            parent=parent,
            tags=tags,
            progress=progress,
        )
    doc = result.version
    mb = result.bytes_uploaded / 1e6
    click.echo(
        f"published {doc.subject} sha256:{doc.digest} ({mb:.1f} MB uploaded, "
        f"{result.bytes_skipped / 1e6:.1f} MB already stored, {result.seconds:.1f} s)"
    )
    if result.logged:
        click.echo(f"  ok: {result.logged}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command("pull")
@click.argument("reference", metavar="NS/MODEL[:VERSION|@sha256:DIGEST]|oci://HOST/REPO:TAG")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Require a signature by this public key (instead of any key the namespace trusts).",
)
@click.option("--allow-rollback", is_flag=True, help="Accept a tag that moved to an older version.")
@click.option("--allow-unsigned", is_flag=True, help="Accept a version without a signature.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 32))
@_max_log_age_option
@_plain_http_option
@_registry_option
def pull_command(
    reference: str,
    dest: Path,
    keys: tuple[str, ...],
    allow_rollback: bool,
    allow_unsigned: bool,
    workers: int,
    max_log_age: float | None,
    plain_http: bool,
    registry_url: str | None,
) -> None:
    """Download a model version into DEST, verified before anything lands there.

    NS/MODEL alone pulls the newest published version (the output says which).

    With oci://HOST/REPO:TAG (or @sha256:DIGEST) the ModelPack artifact is pulled
    from an OCI registry; --key is then required and the signature attached as a
    referrer must verify with it.
    """
    from modelseal.oci.reference import is_oci_reference

    if is_oci_reference(reference):
        from modelseal.cli.oci import pull_command_oci

        pull_command_oci(
            reference,
            dest,
            keys=keys,
            allow_unsigned=allow_unsigned,
            plain_http=plain_http,
            workers=workers,
        )
        return
    if plain_http:
        raise UsageError("--plain-http applies to oci:// references only")
    with _client(registry_url, workers, max_log_age) as client, _progress("pull") as progress:
        result = client.pull(
            reference,
            dest,
            keys=keys,
            allow_rollback=allow_rollback,
            allow_unsigned=allow_unsigned,
            progress=progress,
        )
    doc = result.version
    click.echo(
        f"pulled {doc.subject} sha256:{doc.digest} into {result.destination} "
        f"({result.bytes_downloaded / 1e6:.1f} MB, {result.seconds:.1f} s)"
    )
    for check in result.checks:
        click.echo(f"  ok: {check}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command("info")
@click.argument("reference", metavar="NS/MODEL[:VERSION|@sha256:DIGEST]")
@_format_option
@_registry_option
def info_command(reference: str, output_format: str, registry_url: str | None) -> None:
    """Show a model (its tags, latest version) or one version (files, gate result)."""
    with _client(registry_url) as client:
        doc = client.info(reference).model_dump(mode="json")
    if output_format == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    from modelseal.cli._info import render_info

    click.echo(render_info(doc))


@click.command("search")
@click.argument("query", default="")
@_format_option
@_registry_option
def search_command(query: str, output_format: str, registry_url: str | None) -> None:
    """Search models by name in the namespaces you can read."""
    with _client(registry_url) as client:
        items = [item.model_dump(mode="json") for item in client.search(query)]
    if output_format == "json":
        click.echo(json.dumps(items, indent=2, sort_keys=True))
        return
    for item in items:
        tags = ", ".join(f"{t}→{v}" for t, v in item["tags"].items())
        click.echo(
            f"{item['namespace']}/{item['model']}\tlatest {item['latest_version'] or '-'}\t{tags}"
        )

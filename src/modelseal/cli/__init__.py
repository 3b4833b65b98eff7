"""The ``modelseal`` command: a thin shell over the library.

Subcommands live in one module each and are imported only when used, so
``modelseal --help`` starts fast. Every :class:`~modelseal.errors.ModelsealError`
is caught once, here, and printed as a clear message (exit 2, or the error's own
exit code); nothing else prints a traceback to a user.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

import click

from modelseal import __version__
from modelseal.errors import ModelsealError

__all__ = ["cli", "main"]

# name -> ("module:attribute", one-line help shown by `modelseal --help`)
_COMMANDS: dict[str, tuple[str, str]] = {
    "scan": (
        "modelseal.cli.scan:scan_command",
        "Scan model files statically: what would run on load.",
    ),
    "keygen": ("modelseal.cli.integrity:keygen_command", "Write a signing key pair."),
    "sign": (
        "modelseal.cli.integrity:sign_command",
        "Sign a model (OpenSSF model-signing format).",
    ),
    "verify": ("modelseal.cli.integrity:verify_command", "Verify a model against its signature."),
    "attest": (
        "modelseal.cli.integrity:attest_command",
        "Sign the training provenance of a model.",
    ),
    "provenance": ("modelseal.cli.integrity:provenance_group", "Show signed provenance."),
    "sbom": ("modelseal.cli.sbom:sbom_group", "Write, audit and compare model SBOMs."),
    "weights": (
        "modelseal.cli.weights:weights_group",
        "Inspect weight values: payloads, edits, lineage.",
    ),
    "monitor": ("modelseal.cli.monitor:monitor_group", "Calibrate and check the runtime monitor."),
    "serve": ("modelseal.cli.registry:serve_command", "Run the model registry server."),
    "admin": (
        "modelseal.cli.registry:admin_group",
        "Administer the registry (users, tokens, keys).",
    ),
    "login": ("modelseal.cli.registry:login_command", "Store a registry token for this machine."),
    "push": ("modelseal.cli.registry:push_command", "Publish a model version to the registry."),
    "pull": ("modelseal.cli.registry:pull_command", "Download and verify a model version."),
    "info": ("modelseal.cli.registry:info_command", "Show a model or version in the registry."),
    "search": ("modelseal.cli.registry:search_command", "Search the registry."),
    "check": ("modelseal.cli.policy:check_command", "Decide whether a model may be deployed."),
    "policy": ("modelseal.cli.policy:policy_group", "Show and validate deploy policies."),
    "log": ("modelseal.cli.log:log_group", "Audit the registry's transparency log."),
    "fleet": ("modelseal.cli.fleet:fleet_group", "Scan whole mirrors and S3 prefixes (Ray)."),
}


class _LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (target, _) in _COMMANDS.items() if _available(target))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None or not _available(target[0]):
            return None
        module_name, _, attribute = target[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


def _available(target: str) -> bool:
    """Whether the module implementing a command is installed (cheap: no import)."""
    return importlib.util.find_spec(target.partition(":")[0]) is not None


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="modelseal")
def cli() -> None:
    """Secure the supply chain of machine-learning models.

    Scan model files without executing them, sign and verify weights, write
    model SBOMs, inspect weight values, and gate deployments on one policy.
    Run `modelseal COMMAND --help` for details on each command.
    """


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script: run, map errors to exit codes, exit."""
    try:
        code: Any = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ModelsealError as exc:
        click.secho(f"error: {exc.diagnostics()}", err=True, fg="red")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)

"""Rendering of policy decisions (``modelseal check``)."""

from __future__ import annotations

import io
import json

from modelseal.policy.decision import Decision
from modelseal.render import OutputFormat, renderer_for

__all__ = ["render_decision"]


def render_decision(decision: Decision, fmt: OutputFormat, *, color: bool = False) -> str:
    """A decision as a table (checks, then reasons), JSON, or SARIF (failed checks as results)."""
    if fmt is OutputFormat.JSON:
        return json.dumps(decision.to_dict(), indent=2)
    if fmt is OutputFormat.SARIF:
        return renderer_for(OutputFormat.SARIF).render(decision.as_report())
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=120)
    verdict = "[bold green]ALLOW[/]" if decision.allowed else "[bold red]DENY[/]"
    console.print(f"{verdict} {decision.path} under policy '{decision.policy}'")
    table = Table(box=None, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("details", overflow="fold")
    for outcome in decision.outcomes:
        result = "[green]pass[/]" if outcome.passed else "[red]FAIL[/]"
        table.add_row(outcome.check, result, outcome.summary)
        for reason in outcome.reasons:
            where = f" ({reason.path})" if reason.path else ""
            table.add_row("", "", f"[red]-[/] {reason.message}{where}")
    console.print(table)
    return buffer.getvalue().rstrip("\n")

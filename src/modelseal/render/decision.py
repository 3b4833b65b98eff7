"""Rendering of policy decisions (``modelseal check``)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from modelseal.policy.decision import Decision
from modelseal.render import OutputFormat, renderer_for
from modelseal.render._console import text_console
from modelseal.scan.model import ScanReport

__all__ = ["decisions_document", "render_decisions"]


def decisions_document(decisions: Sequence[Decision]) -> dict[str, object]:
    """The JSON contract of ``modelseal check``: the overall decision, then one per model."""
    return {
        "version": 1,
        "decision": "allow" if all(d.allowed for d in decisions) else "deny",
        "models": [d.to_dict() for d in decisions],
    }


def render_decisions(
    decisions: Sequence[Decision], fmt: OutputFormat, *, color: bool = False
) -> str:
    """Decisions as tables (checks, then reasons), JSON, or SARIF (failed checks as results)."""
    if fmt is OutputFormat.JSON:
        return json.dumps(decisions_document(decisions), indent=2)
    if fmt is OutputFormat.SARIF:
        report = ScanReport.merge(d.as_report() for d in decisions)
        return renderer_for(OutputFormat.SARIF).render(report)
    return "\n\n".join(_table(d, color) for d in decisions)


def _table(decision: Decision, color: bool) -> str:
    from rich.table import Table

    buffer = io.StringIO()
    console = text_console(buffer, color=color)
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

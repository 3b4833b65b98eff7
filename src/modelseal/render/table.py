"""Human output: one block per file, one line per finding, saying what would run."""

from __future__ import annotations

import io

from modelseal.render.interface import Renderer
from modelseal.scan.model import ScanReport, Severity, Verdict

__all__ = ["TableRenderer"]

_VERDICT_STYLE = {
    Verdict.CLEAN: "green",
    Verdict.SUSPICIOUS: "yellow",
    Verdict.ERROR: "magenta",
    Verdict.MALICIOUS: "bold red",
}
_SEVERITY_STYLE = {
    Severity.INFO: "dim",
    Severity.LOW: "cyan",
    Severity.MEDIUM: "yellow",
    Severity.HIGH: "red",
    Severity.CRITICAL: "bold red",
}


class TableRenderer(Renderer):
    """A rich table grouped by file; colour only when asked (i.e. on a terminal)."""

    def render(self, report: ScanReport, *, color: bool = False) -> str:
        """The table and a one-line summary."""
        from rich.console import Console
        from rich.table import Table

        buffer = io.StringIO()
        console = Console(
            file=buffer, force_terminal=color, no_color=not color, width=120, soft_wrap=False
        )
        table = Table(show_lines=False, expand=False, box=None, pad_edge=False)
        table.add_column("verdict", no_wrap=True)
        table.add_column("file", overflow="fold")
        table.add_column("format", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("finding", overflow="fold")
        for result in report.results:
            verdict = result.verdict
            style = _VERDICT_STYLE[verdict]
            rows: list[tuple[str, str, str]] = []
            for finding in sorted(result.findings, key=lambda f: -f.severity.rank):
                where = f" [{finding.location}]" if finding.location else ""
                rows.append(
                    (
                        finding.severity.value,
                        f"{finding.message}{where}",
                        _SEVERITY_STYLE[finding.severity],
                    )
                )
            if result.error:
                rows.append(("error", f"could not be fully analysed: {result.error}", "magenta"))
            if not rows:
                rows.append(("", "", ""))
            first = True
            for severity, message, sev_style in rows:
                table.add_row(
                    f"[{style}]{verdict.value}[/]" if first else "",
                    result.path if first else "",
                    result.format if first else "",
                    f"[{sev_style}]{severity}[/]" if severity else "",
                    message,
                )
                first = False
        console.print(table)
        summary = report.summary()
        counts = ", ".join(f"{summary[v.value]} {v.value}" for v in Verdict if summary[v.value])
        console.print(f"\n{summary['files']} scanned: {counts or 'nothing found'}")
        return buffer.getvalue().rstrip("\n")

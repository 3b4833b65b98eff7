"""Human output: one block per file, one line per finding, saying what would run."""

from __future__ import annotations

import io

from modelseal.render._console import text_console
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

#: Width of the verdict column (the longest verdict, "suspicious", and two spaces).
_VERDICT_WIDTH = 12
#: Width of the severity column inside a file's block.
_SEVERITY_WIDTH = 10


class TableRenderer(Renderer):
    """One block per file: verdict, path and format, then one line per finding.

    Colour only when asked (i.e. on a terminal). Paths are never broken: a path has no
    spaces, so wrapping it would cut a name in two; messages wrap at spaces to the output
    width (``$COLUMNS``, the terminal's, or unwrapped into a pipe or file).
    """

    def render(self, report: ScanReport, *, color: bool = False) -> str:
        """The blocks and a one-line summary."""
        import textwrap

        from rich.markup import escape

        buffer = io.StringIO()
        console = text_console(buffer, color=color)
        indent = " " * _VERDICT_WIDTH
        message_width = max(20, console.width - _VERDICT_WIDTH - _SEVERITY_WIDTH)
        for result in report.results:
            verdict = result.verdict
            head = f"[{_VERDICT_STYLE[verdict]}]{verdict.value:<{_VERDICT_WIDTH}}[/]"
            console.print(f"{head}{escape(result.path)}  ({escape(result.format)})", soft_wrap=True)
            rows = [
                (
                    finding.severity.value,
                    f"{finding.message} [{finding.location}]"
                    if finding.location
                    else finding.message,
                    _SEVERITY_STYLE[finding.severity],
                )
                for finding in sorted(result.findings, key=lambda f: -f.severity.rank)
            ]
            if result.error:
                rows.append(("error", f"could not be fully analysed: {result.error}", "magenta"))
            for severity, message, style in rows:
                lines = textwrap.wrap(
                    message, message_width, break_long_words=False, break_on_hyphens=False
                ) or [""]
                console.print(
                    f"{indent}[{style}]{severity:<{_SEVERITY_WIDTH}}[/]{escape(lines[0])}",
                    soft_wrap=True,
                )
                for line in lines[1:]:
                    console.print(f"{indent}{' ' * _SEVERITY_WIDTH}{escape(line)}", soft_wrap=True)
        summary = report.summary()
        counts = ", ".join(f"{summary[v.value]} {v.value}" for v in Verdict if summary[v.value])
        console.print(f"\n{summary['files']} scanned: {counts or 'nothing found'}", soft_wrap=True)
        return buffer.getvalue().rstrip("\n")

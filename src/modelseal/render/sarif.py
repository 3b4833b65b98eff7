"""SARIF 2.1.0 output, as GitHub code scanning reads it.

Findings in archive members point at the archive file on disk (the only thing a
code-scanning UI can show) and name the member as a logical location.
"""

from __future__ import annotations

import json
from typing import Any

from modelseal.render.interface import Renderer
from modelseal.scan.model import RuleInfo, ScanReport, Severity

__all__ = ["SarifRenderer"]

_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.INFO: "note",
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}
# GitHub ranks security alerts by this CVSS-like number.
_SECURITY_SEVERITY = {
    Severity.INFO: "0.0",
    Severity.LOW: "3.0",
    Severity.MEDIUM: "5.5",
    Severity.HIGH: "8.0",
    Severity.CRITICAL: "9.5",
}
_ERROR_RULE = RuleInfo(
    "MS-SCAN-ERROR",
    "File could not be analysed",
    "The file could not be parsed completely; it is not known to be safe.",
    Severity.HIGH,
)


class SarifRenderer(Renderer):
    """One SARIF run with a rule per rule id and a result per finding or error."""

    def render(self, report: ScanReport, *, color: bool = False) -> str:
        """A SARIF 2.1.0 log as indented JSON."""
        from modelseal import __version__

        catalog = {**report.rules, _ERROR_RULE.id: _ERROR_RULE}
        used: dict[str, int] = {}
        results: list[dict[str, Any]] = []
        for file_result in report.results:
            physical = file_result.path.split("!", 1)[0]
            member = file_result.path if "!" in file_result.path else None
            issues = [(f.rule, f.severity, f.message, f.location) for f in file_result.findings]
            if file_result.error:
                issues.append((_ERROR_RULE.id, Severity.HIGH, file_result.error, ""))
            for rule_id, severity, message, location in issues:
                if rule_id not in catalog:
                    catalog[rule_id] = RuleInfo(rule_id, rule_id, rule_id, severity)
                index = used.setdefault(rule_id, len(used))
                logical = [name for name in (member, location or None) if name]
                result: dict[str, Any] = {
                    "ruleId": rule_id,
                    "ruleIndex": index,
                    "level": _LEVEL[severity],
                    "message": {"text": message},
                    "locations": [
                        {
                            "physicalLocation": {"artifactLocation": {"uri": _uri(physical)}},
                            **(
                                {"logicalLocations": [{"fullyQualifiedName": n} for n in logical]}
                                if logical
                                else {}
                            ),
                        }
                    ],
                    "properties": {
                        "severity": severity.value,
                        "verdict": file_result.verdict.value,
                    },
                }
                results.append(result)
        rules = [_rule(catalog[rule_id]) for rule_id in sorted(used, key=used.__getitem__)]
        log = {
            "$schema": _SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "modelseal",
                            "version": __version__,
                            "informationUri": "https://github.com/modelseal/modelseal",
                            "rules": rules,
                        }
                    },
                    "results": results,
                }
            ],
        }
        return json.dumps(log, indent=2)


def _rule(info: RuleInfo) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": info.id,
        "name": "".join(part.capitalize() for part in info.name.split()),
        "shortDescription": {"text": info.name},
        "fullDescription": {"text": info.description},
        "defaultConfiguration": {"level": _LEVEL[info.default_severity]},
        "properties": {
            "tags": ["security", "supply-chain", "machine-learning"],
            "security-severity": _SECURITY_SEVERITY[info.default_severity],
        },
    }
    if info.help_uri:
        rule["helpUri"] = info.help_uri
    return rule


def _uri(path: str) -> str:
    from urllib.parse import quote

    return quote(path.replace("\\", "/").removeprefix("./"))

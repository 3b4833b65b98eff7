"""GGUF files: header sanity and every chat template (``tokenizer.chat_template*``).

A header that does not parse is an error (never clean). A header that parses but
hides bytes in the data section, or stores strings that are not UTF-8, is
reported; every chat template goes through :mod:`modelseal.scan.templates`.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelseal.errors import FormatError
from modelseal.formats.format import Format
from modelseal.formats.gguf import chat_templates, read_gguf
from modelseal.formats.inventory import Entry
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity
from modelseal.scan.templates import TEMPLATE_RULES, scan_template

__all__ = ["GgufRule"]

_HIDDEN = RuleInfo(
    "MS-GGUF-HIDDEN-DATA",
    "GGUF data section holds bytes no tensor uses",
    "Bytes between or after the tensors, beyond alignment padding, are not part of the "
    "model: a place to smuggle a payload past tools that only read tensors.",
    Severity.MEDIUM,
)
_TEMPLATE_TYPE = RuleInfo(
    "MS-GGUF-TEMPLATE-NOT-STRING",
    "GGUF chat template key does not hold a string",
    "A tokenizer.chat_template* key holds something other than a string (or a list of "
    "template names); loaders disagree on what to render.",
    Severity.MEDIUM,
)
_BAD_UTF8 = RuleInfo(
    "MS-GGUF-INVALID-UTF8",
    "GGUF string is not valid UTF-8",
    "A metadata string is not valid UTF-8, so loaders may read it differently.",
    Severity.LOW,
)


class GgufRule(Rule):
    """Validates GGUF headers and scans their chat templates."""

    formats = frozenset({Format.GGUF})
    infos = (_HIDDEN, _TEMPLATE_TYPE, _BAD_UTF8, *TEMPLATE_RULES)

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Raise for malformed headers; yield template and layout findings."""
        gguf = read_gguf(entry)
        problems: list[str] = []
        for key, value in chat_templates(gguf).items():
            # llama.cpp's list of named templates holds names of further keys, not templates.
            if (
                key == "tokenizer.chat_templates"
                and isinstance(value, tuple)
                and all(isinstance(v, str) for v in value)
            ):
                continue
            if not isinstance(value, str):
                yield Finding(
                    _TEMPLATE_TYPE.id,
                    _TEMPLATE_TYPE.default_severity,
                    f"{key} holds a {gguf.value_types[key]}, not a template string",
                    key,
                )
                continue
            try:
                yield from scan_template(value, key)
            except FormatError as exc:
                problems.append(exc.message)
        if gguf.unused_bytes:
            yield Finding(
                _HIDDEN.id,
                _HIDDEN.default_severity,
                f"{gguf.unused_bytes:,} bytes of the data section belong to no tensor",
                f"data section at byte {gguf.data_offset:,}",
            )
        for key in gguf.invalid_utf8_keys:
            yield Finding(
                _BAD_UTF8.id,
                _BAD_UTF8.default_severity,
                f"the value of {key} is not valid UTF-8",
                key,
            )
        if problems:
            raise FormatError("; ".join(problems))

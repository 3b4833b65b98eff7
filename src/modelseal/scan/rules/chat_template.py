"""Chat templates found by content: any JSON or YAML carrying ``chat_template``, any ``.jinja``.

Loaders take chat templates from more places than ``tokenizer_config.json``:
``generation_config.json``, serving configs in YAML (vLLM, TGI, LiteLLM...),
template files of any name passed with ``--chat-template``. So, whatever a file is
called and wherever it sits:

* a ``.jinja`` / ``.j2`` / ``.jinja2`` file is a template;
* a JSON file (by content) or a ``.yaml``/``.yml`` file (YAML's *safe* loader only:
  no tags, no objects) is searched for ``chat_template`` keys at any depth, whose
  value is a template string, a list of ``{name, template}`` or a ``{name: template}``
  mapping.

Each template goes through :func:`modelseal.scan.templates.scan_template`; one that
does not parse is an ``error`` (a loader would refuse it or read it differently).
JSON is only parsed when a ``chat_template`` key is spelled in it, escapes included
(so ``"chat\\u005ftemplate"`` is found), which keeps multi-megabyte ``tokenizer.json``
vocabularies off the slow path. YAML without a YAML extension is not searched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding
from modelseal.scan.templates import TEMPLATE_RULES, scan_template

__all__ = ["ChatTemplateRule", "find_templates"]

#: Largest JSON/template file read (tokenizer configs reach a few MB).
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Largest YAML file parsed (YAML parsing is slow; configs are kilobytes).
MAX_YAML_BYTES = 16 * 1024 * 1024
#: Most containers visited looking for ``chat_template`` keys.
MAX_NODES = 1_000_000

TEMPLATE_SUFFIXES = (".jinja", ".j2", ".jinja2")
_YAML_SUFFIXES = (".yaml", ".yml")
_KEY = "chat_template"


def _spelled_key(key: str) -> re.Pattern[bytes]:
    r"""``"key"`` in JSON source, each character either literal or a ``\uXXXX`` escape."""
    units = []
    for char in key:
        hex_digits = "".join(f"[{d.lower()}{d.upper()}]" for d in f"{ord(char):04x}")
        units.append(f"(?:{re.escape(char)}|\\\\u{hex_digits})")
    return re.compile(('"' + "".join(units) + '"').encode())


_JSON_KEY = _spelled_key(_KEY)
# YAML can only spell the key literally or through a double-quoted escape.
_YAML_HINT = re.compile(rb"chat_template|\\")


class ChatTemplateRule(Rule):
    """Every chat template in template files, JSON and YAML, checked for sandbox escapes."""

    formats = None
    infos = TEMPLATE_RULES

    def applies_to(self, entry: Entry, options: ScanOptions) -> bool:
        """Template files by name; JSON by content; YAML by name."""
        if entry.format in (Format.EMPTY, Format.SYMLINK):
            return False
        name = entry.name.lower()
        if name.endswith(TEMPLATE_SUFFIXES):
            return True
        if entry.format is Format.JSON:
            return True
        return entry.format is Format.TEXT and name.endswith((*_YAML_SUFFIXES, ".json"))

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Scan the file's templates; a template that does not parse is an error."""
        name = entry.name.lower()
        if name.endswith(TEMPLATE_SUFFIXES):
            yield from scan_template(_decode(entry, _read(entry, MAX_JSON_BYTES)), entry.name)
            return
        if name.endswith(_YAML_SUFFIXES):
            data = _read(entry, MAX_YAML_BYTES)
            if not _YAML_HINT.search(data):
                return
            document = _load_yaml(entry, data)
        else:
            data = _read(entry, MAX_JSON_BYTES)
            if not _JSON_KEY.search(data):
                return
            try:
                document = json.loads(_decode(entry, data))
            except RecursionError as exc:
                raise LimitExceededError(f"{entry.path}: JSON nested too deeply") from exc
            except ValueError as exc:
                raise FormatError(f"{entry.path}: not valid JSON ({exc})") from exc
        problems: list[str] = []
        for where, template in find_templates(document):
            try:
                yield from scan_template(template, where)
            except FormatError as exc:
                problems.append(exc.message)
        if problems:
            raise FormatError("; ".join(problems))


def find_templates(document: Any) -> Iterator[tuple[str, str]]:
    """(location, template) for every ``chat_template`` value anywhere in ``document``.

    Top-level keys are located as ``chat_template``; nested ones by their path
    (``serving.models[0].chat_template[tool_use]``). YAML aliases are visited once.
    """
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict | list) or id(node) in seen:
            continue
        seen.add(id(node))
        if len(seen) > MAX_NODES:
            raise LimitExceededError(f"more than {MAX_NODES:,} objects to search for templates")
        if isinstance(node, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(node))))
            continue
        children = []
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == _KEY:
                yield from _template_values(where, value)
            else:
                children.append((where, value))
        stack.extend(reversed(children))


def _template_values(where: str, value: Any) -> Iterator[tuple[str, str]]:
    """A template string, a list of ``{name, template}``, or a ``{name: template}`` map."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict) and isinstance(item.get("template"), str):
                yield f"{where}[{item.get('name', index)}]", item["template"]
            elif isinstance(item, str):
                yield f"{where}[{index}]", item
    elif isinstance(value, dict):
        for name, template in value.items():
            if isinstance(template, str):
                yield f"{where}[{name}]", template


def _load_yaml(entry: Entry, data: bytes) -> Any:
    """Parse YAML with the safe loader (plain data only; tags that build objects fail).

    A broken YAML file is only an error when it spells ``chat_template``: other broken
    YAML (a Helm chart, say) is not this rule's business.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(_decode(entry, data), Loader=loader)
    except RecursionError as exc:
        raise LimitExceededError(f"{entry.path}: YAML nested too deeply") from exc
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        if _KEY.encode() not in data:
            return None
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FormatError(f"{entry.path}: not valid YAML ({reason})") from exc


def _read(entry: Entry, limit: int) -> bytes:
    with entry.open() as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise LimitExceededError(f"{entry.path}: larger than {limit:,} bytes; not analysed")
    return data


def _decode(entry: Entry, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{entry.path}: not valid UTF-8 text ({exc.reason})") from exc

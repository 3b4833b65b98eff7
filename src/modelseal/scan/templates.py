"""Chat-template analysis: find sandbox-escape gadgets in Jinja2 templates, statically.

Chat templates (GGUF ``tokenizer.chat_template*``, ``tokenizer_config.json``,
``chat_template.json``/``.jinja``) are Jinja2 programs that loaders render with
attacker-chosen source. Some loaders render them outside a sandbox
(CVE-2024-34359), and sandbox escapes come and go, so a template that *reaches
for* Python internals is reported whatever the loader.

The template is parsed with :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`
and only its AST is inspected: nothing is compiled or rendered. Reported:

* attribute or item access to dunder names (``__class__``, ``__globals__``,
  ``__subclasses__``...) or other private names — also through ``|attr(...)``,
  ``map(attribute=...)`` and friends — and to process/import helpers
  (``os``, ``popen``, ``system``, ``import_module``, ``eval``...);
* names built at render time (``'__cla' ~ 'ss__'``, ``['_'*2, 'class']|join``,
  ``'%c%c'|format(95, 95)``, ``'{0.__class__}'.format``, reversed slices...):
  folded statically when possible, and reported as unresolvable otherwise;
* the usual SSTI objects (``self``, ``config``, ``request``...), the
  ``cycler``/``joiner``/``lipsum`` gadgets, and ``include``/``import``/``extends``.

``namespace``, ``range``, loops, ``raise_exception``, ``strftime_now`` and
``tojson`` — what real ChatML, Llama-3, Mistral, Qwen and Gemma templates use —
are not reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from modelseal.errors import FormatError, LimitExceededError
from modelseal.scan.model import Finding, RuleInfo, Severity

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "MAX_TEMPLATE_CHARS",
    "TEMPLATE_RULES",
    "TemplateError",
    "scan_template",
]

#: Longest template analysed (real ones are a few kilobytes).
MAX_TEMPLATE_CHARS = 1_000_000
_MAX_NODES = 200_000
_MAX_FOLDED = 4096  # longest string built while folding constants
_MAX_CHOICES = 16  # most alternative values tracked for one expression
_MAX_FOLD_DEPTH = 24

_INTERNALS = RuleInfo(
    "MS-TEMPLATE-PYTHON-INTERNALS",
    "Chat template reaches Python internals",
    "The template accesses dunder or private attributes, or process and import helpers "
    "(os, popen, eval...): the building blocks of Jinja2 sandbox escapes that run code "
    "when the template is rendered.",
    Severity.CRITICAL,
)
_COMPUTED = RuleInfo(
    "MS-TEMPLATE-COMPUTED-NAME",
    "Chat template builds attribute names at render time",
    "An attribute or key name is assembled from pieces (concatenation, join, format, "
    "slicing) so that it cannot be read in the source: a common way to hide sandbox escapes.",
    Severity.HIGH,
)
_OBJECTS = RuleInfo(
    "MS-TEMPLATE-SSTI-OBJECT",
    "Chat template uses server-side template injection objects",
    "The template refers to objects used by template-injection payloads (self, config, "
    "request, cycler, joiner, lipsum...) that no chat template needs.",
    Severity.HIGH,
)
_IMPORTS = RuleInfo(
    "MS-TEMPLATE-LOADS-TEMPLATES",
    "Chat template loads other templates",
    "include/import/extends make the renderer read other template files.",
    Severity.HIGH,
)
_STRINGS = RuleInfo(
    "MS-TEMPLATE-SUSPICIOUS-STRING",
    "Chat template contains Python internal names",
    "A string in the template names a Python internal (e.g. '__globals__') or holds a "
    "str.format field that reads attributes.",
    Severity.HIGH,
)

#: Every rule id :func:`scan_template` can emit.
TEMPLATE_RULES: tuple[RuleInfo, ...] = (_INTERNALS, _COMPUTED, _OBJECTS, _IMPORTS, _STRINGS)

#: Attribute names that only an escape needs, with why.
_DANGEROUS_ATTRIBUTES: dict[str, str] = {
    "os": "the os module",
    "popen": "runs a shell command",
    "system": "runs a shell command",
    "subprocess": "the subprocess module",
    "check_output": "runs a command",
    "getoutput": "runs a command",
    "spawnv": "runs a program",
    "execv": "runs a program",
    "import_module": "imports a module",
    "load_module": "imports a module",
    "builtins": "the builtins module",
    "eval": "evaluates Python",
    "exec": "executes Python",
    "compile": "compiles Python",
    "environ": "reads the environment",
    "getenv": "reads the environment",
    "f_globals": "a frame's globals",
    "f_locals": "a frame's locals",
    "f_back": "the calling frame",
    "gi_frame": "a generator's frame",
    "cr_frame": "a coroutine's frame",
    "tb_frame": "a traceback's frame",
    "func_globals": "a function's globals",
    "mro": "the class hierarchy",
}
#: Item keys that only an escape needs (``system`` is a normal role name, so not here).
_DANGEROUS_KEYS = frozenset({"os", "popen", "subprocess", "builtins", "eval", "exec"})
#: Names that SSTI payloads start from; no chat template needs them.
_SSTI_OBJECTS: dict[str, str] = {
    "self": "the template reference object (reaches the render context)",
    "config": "a web framework's config object",
    "request": "a web framework's request object",
    "session": "a web framework's session object",
    "url_for": "a Flask helper whose globals hold the app",
    "get_flashed_messages": "a Flask helper whose globals hold the app",
    "cycler": "a Jinja2 global used as an escape gadget",
    "joiner": "a Jinja2 global used as an escape gadget",
    "lipsum": "a Jinja2 global used as an escape gadget (its globals hold os)",
}
# Filters that take an attribute name as keyword argument ``attribute``.
_ATTRIBUTE_FILTERS = frozenset(
    {"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)
# Filters that turn strings into strings (checked for names they spell).
_STRING_FILTERS = frozenset(
    {"join", "format", "replace", "reverse", "string", "lower", "upper", "first", "last"}
)
_DUNDER = re.compile(r"__\w+__")
_FORMAT_FIELD_ACCESS = re.compile(r"\{[^{}]*[.\[][^{}]*\}")
_PERCENT_SPEC = re.compile(r"%[sdirc%]")


class TemplateError(FormatError):
    """A chat template does not parse (so a loader would refuse or misread it)."""


def scan_template(source: str, where: str) -> list[Finding]:
    """Findings for one chat template; ``where`` prefixes each location (``key:line``).

    Raises :class:`TemplateError` if the template is not valid Jinja2 and
    :class:`LimitExceededError` if it is too large or too deeply nested to analyse.
    """
    if len(source) > MAX_TEMPLATE_CHARS:
        raise LimitExceededError(
            f"{where}: chat template of {len(source):,} characters (limit {MAX_TEMPLATE_CHARS:,})"
        )
    from jinja2 import TemplateSyntaxError

    try:
        tree = _environment().parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"{where}: chat template does not parse (line {exc.lineno}: {exc.message})"
        ) from exc
    except RecursionError as exc:
        raise LimitExceededError(f"{where}: chat template is nested too deeply") from exc
    try:
        findings = dict.fromkeys(_Analyzer(tree, where).run())
    except RecursionError as exc:
        raise LimitExceededError(f"{where}: chat template is nested too deeply") from exc
    return sorted(findings, key=lambda f: -f.severity.rank)  # worst first, stable


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _GenerationTag(Extension):
        """transformers' ``{% generation %}...{% endgeneration %}`` (assistant masks)."""

        tags = {"generation"}  # noqa: RUF012 - jinja2's Extension API

        def parse(self, parser: Any) -> nodes.Node:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    # The same extensions transformers enables, so real templates parse.
    return ImmutableSandboxedEnvironment(extensions=[_GenerationTag, "jinja2.ext.loopcontrols"])


class _Unknown(Exception):
    """A value that cannot be computed statically."""


class _Analyzer:
    def __init__(self, tree: nodes.Template, where: str) -> None:
        from jinja2 import nodes

        self.n = nodes
        self.tree = tree
        self.where = where
        self.assigned: dict[str, list[nodes.Node]] = {}
        self.bound: set[str] = set()  # every name the template binds (loops, macros, sets)
        self.folding: set[int] = set()

    # -- results -------------------------------------------------------------------------
    def finding(
        self, info: RuleInfo, message: str, node: nodes.Node, severity: Severity | None = None
    ) -> Finding:
        return Finding(
            info.id,
            severity or info.default_severity,
            f"chat template {message}",
            f"{self.where}:{node.lineno}",
        )

    def run(self) -> Iterator[Finding]:
        n = self.n
        all_nodes = []
        for count, node in enumerate(self.tree.find_all(n.Node), start=1):
            if count > _MAX_NODES:
                raise LimitExceededError(f"{self.where}: chat template has too many nodes")
            all_nodes.append(node)
            if isinstance(node, n.Assign) and isinstance(node.target, n.Name):
                self.assigned.setdefault(node.target.name, []).append(node.node)
            if isinstance(node, n.Name) and node.ctx in ("store", "param"):
                self.bound.add(node.name)
            if isinstance(node, n.Macro):
                self.bound.add(node.name)
                self.bound.update(a.name for a in node.args)
        for node in all_nodes:
            yield from self.check(node)

    def check(self, node: nodes.Node) -> Iterator[Finding]:
        n = self.n
        if isinstance(node, n.Getattr):
            if not (node.attr in _DANGEROUS_ATTRIBUTES and self.is_namespace(node.node)):
                yield from self.check_name(node.attr, node, attribute=True)
        elif isinstance(node, n.Getitem):
            if isinstance(node.arg, n.Slice):
                yield from self.check_built_string(node)
            else:
                yield from self.check_computed(node.arg, node, attribute=False)
        elif isinstance(node, n.Filter | n.Test):
            yield from self.check_filter(node)
            if isinstance(node, n.Filter) and node.name in _STRING_FILTERS:
                yield from self.check_built_string(node)
        elif isinstance(node, n.Name) and node.ctx == "load":
            if node.name in _SSTI_OBJECTS and node.name not in self.bound:
                yield self.finding(
                    _OBJECTS,
                    f"uses {node.name!r}: {_SSTI_OBJECTS[node.name]}",
                    node,
                    Severity.MEDIUM if node.name in ("cycler", "joiner") else None,
                )
        elif isinstance(node, n.Include | n.Import | n.FromImport | n.Extends):
            what = type(node).__name__.lower()
            yield self.finding(_IMPORTS, f"{what}s another template", node)
        elif isinstance(node, n.Const) and isinstance(node.value, str):
            yield from self.check_literal(node.value, node)
        elif isinstance(node, n.Keyword) and _DUNDER.fullmatch(node.key):
            yield self.finding(_STRINGS, f"passes a keyword named {node.key!r}", node)
        elif isinstance(node, n.Call):
            yield from self.check_call(node)
            yield from self.check_built_string(node)
        elif isinstance(node, n.Concat | n.Add | n.Mod | n.Mul):
            yield from self.check_built_string(node)

    def check_name(self, name: str, node: nodes.Node, *, attribute: bool) -> Iterator[Finding]:
        how = "attribute" if attribute else "key"
        if _DUNDER.fullmatch(name):
            yield self.finding(_INTERNALS, f"accesses Python internal {how} {name!r}", node)
        elif name.startswith("_") and attribute:
            yield self.finding(
                _INTERNALS, f"accesses private attribute {name!r}", node, Severity.HIGH
            )
        elif attribute and name in _DANGEROUS_ATTRIBUTES:
            severity = Severity.HIGH if name == "system" else None
            yield self.finding(
                _INTERNALS,
                f"accesses attribute {name!r} ({_DANGEROUS_ATTRIBUTES[name]})",
                node,
                severity,
            )
        elif not attribute and name in _DANGEROUS_KEYS:
            yield self.finding(
                _INTERNALS, f"looks up key {name!r} ({_DANGEROUS_ATTRIBUTES[name]})", node
            )

    def check_computed(
        self, expr: nodes.Node, node: nodes.Node, *, attribute: bool
    ) -> Iterator[Finding]:
        """Check a name given as an expression (a subscript or ``|attr`` argument)."""
        n = self.n
        if isinstance(expr, n.Const):
            if isinstance(expr.value, str):
                yield from self.check_name(expr.value, node, attribute=attribute)
            return
        try:
            values = self.fold(expr)
        except _Unknown:
            if attribute or self.stringy(expr):
                yield self.finding(
                    _COMPUTED,
                    f"uses an {'attribute' if attribute else 'key'} name computed at render time",
                    node,
                )
            return
        for value in values:
            if isinstance(value, str):
                yield from self.check_name(value, node, attribute=attribute)

    def check_filter(self, node: nodes.Filter | nodes.Test) -> Iterator[Finding]:
        n = self.n
        if node.name == "attr":
            if node.args:
                yield from self.check_computed(node.args[0], node, attribute=True)
            else:
                yield self.finding(_COMPUTED, "uses |attr without a constant name", node)
        if node.name in _ATTRIBUTE_FILTERS:
            for keyword in node.kwargs:
                if keyword.key == "attribute":
                    yield from self.check_computed(keyword.value, node, attribute=True)
        if (
            node.name in ("map", "select", "reject", "selectattr", "rejectattr")
            and node.args
            and isinstance(node.args[0], n.Const)
            and node.args[0].value == "attr"
        ):
            for arg in node.args[1:]:
                yield from self.check_computed(arg, node, attribute=True)

    def check_call(self, node: nodes.Call) -> Iterator[Finding]:
        n = self.n
        func = node.node
        if isinstance(func, n.Getattr) and func.attr in ("format", "format_map"):
            try:
                formats = self.fold(func.node)
            except _Unknown:
                return
            for value in formats:
                if isinstance(value, str) and _FORMAT_FIELD_ACCESS.search(value):
                    yield self.finding(
                        _STRINGS,
                        f"formats {value[:60]!r}, whose fields read attributes or items",
                        node,
                    )

    def check_literal(self, value: str, node: nodes.Node) -> Iterator[Finding]:
        for match in dict.fromkeys(_DUNDER.findall(value)):
            yield self.finding(_STRINGS, f"contains the Python internal name {match!r}", node)

    def check_built_string(self, node: nodes.Node) -> Iterator[Finding]:
        """A string assembled from pieces that spells a Python internal."""
        try:
            values = self.fold(node)
        except _Unknown:
            return
        for value in values:
            if isinstance(value, str) and _DUNDER.search(value):
                yield self.finding(
                    _COMPUTED, f"builds the Python internal name {value[:60]!r}", node
                )

    def is_namespace(self, expr: nodes.Node) -> bool:
        """Whether ``expr`` names a ``namespace(...)`` the template made (``ns.system`` is
        the template's own field, not ``os.system``)."""
        n = self.n
        if not isinstance(expr, n.Name):
            return False
        sources = self.assigned.get(expr.name, [])
        return bool(sources) and all(
            isinstance(s, n.Call) and isinstance(s.node, n.Name) and s.node.name == "namespace"
            for s in sources
        )

    def stringy(self, expr: nodes.Node) -> bool:
        """Whether ``expr`` assembles a string (as opposed to, e.g., an index computation)."""
        n = self.n
        if isinstance(expr, n.Concat | n.Mod):
            return True
        if isinstance(expr, n.Filter):
            return expr.name in _STRING_FILTERS
        if isinstance(expr, n.Add | n.Mul):
            return any(
                isinstance(side, n.Const) and isinstance(side.value, str)
                for side in (expr.left, expr.right)
            )
        return False

    # -- constant folding --------------------------------------------------------------
    def fold(self, node: nodes.Node, depth: int = 0) -> tuple[Any, ...]:
        """Every value ``node`` may take (strings, ints, tuples), or raise ``_Unknown``."""
        if depth > _MAX_FOLD_DEPTH or id(node) in self.folding:
            raise _Unknown
        self.folding.add(id(node))
        try:
            values = self._fold(node, depth + 1)
        finally:
            self.folding.discard(id(node))
        if len(values) > _MAX_CHOICES:
            raise _Unknown
        for value in values:
            if isinstance(value, str | tuple) and len(value) > _MAX_FOLDED:
                raise _Unknown
        return tuple(dict.fromkeys(values))

    def _fold(self, node: nodes.Node, depth: int) -> tuple[Any, ...]:
        n = self.n
        if isinstance(node, n.Const):
            if isinstance(node.value, str | int) and not isinstance(node.value, bool):
                return (node.value,)
            raise _Unknown
        if isinstance(node, n.Name):
            sources = self.assigned.get(node.name)
            if not sources:
                raise _Unknown
            return tuple(v for s in sources for v in self.fold(s, depth))
        if isinstance(node, n.List | n.Tuple):
            return tuple(self._product([self.fold(item, depth) for item in node.items]))
        if isinstance(node, n.Concat):
            parts = [self.fold(item, depth) for item in node.nodes]
            return tuple("".join(_text(p) for p in combo) for combo in self._product(parts))
        if isinstance(node, n.CondExpr):
            return self.fold(node.expr1, depth) + (
                self.fold(node.expr2, depth) if node.expr2 is not None else ("",)
            )
        if isinstance(node, n.Add | n.Mul | n.Mod):
            lefts, rights = self.fold(node.left, depth), self.fold(node.right, depth)
            return tuple(_binary(type(node).__name__, a, b) for a in lefts for b in rights)
        if isinstance(node, n.Neg):
            return tuple(-_int(v) for v in self.fold(node.node, depth))
        if isinstance(node, n.Getitem):
            bases = self.fold(node.node, depth)
            if isinstance(node.arg, n.Slice):
                bounds = [
                    self.fold(part, depth) if part is not None else (None,)
                    for part in (node.arg.start, node.arg.stop, node.arg.step)
                ]
                return tuple(
                    _sequence(b)[slice(*map(_optional_int, combo))]
                    for b in bases
                    for combo in self._product(bounds)
                )
            keys = self.fold(node.arg, depth)
            return tuple(_index(b, k) for b in bases for k in keys)
        if isinstance(node, n.Filter) and node.node is not None:
            bases = self.fold(node.node, depth)
            args = [self.fold(a, depth) for a in node.args]
            if node.kwargs or node.dyn_args or node.dyn_kwargs:
                raise _Unknown
            return tuple(
                _filter(node.name, b, combo) for b in bases for combo in self._product(args)
            )
        if isinstance(node, n.Call):
            func = node.node
            if isinstance(func, n.Name) and func.name == "dict" and not node.args:
                return (tuple(k.key for k in node.kwargs),)
            if isinstance(func, n.Getattr) and not node.kwargs:
                bases = self.fold(func.node, depth)
                args = [self.fold(a, depth) for a in node.args]
                return tuple(
                    _method(func.attr, b, combo) for b in bases for combo in self._product(args)
                )
        raise _Unknown

    def _product(self, choices: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        combos: list[tuple[Any, ...]] = [()]
        for options in choices:
            combos = [(*c, o) for c in combos for o in options]
            if len(combos) > _MAX_CHOICES:
                raise _Unknown
        return combos


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    raise _Unknown


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Unknown


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _sequence(value: Any) -> str | tuple[Any, ...]:
    if isinstance(value, str | tuple):
        return value
    raise _Unknown


def _index(base: Any, key: Any) -> Any:
    try:
        return _sequence(base)[_int(key)]
    except IndexError:
        raise _Unknown from None


def _binary(op: str, left: Any, right: Any) -> Any:
    if op == "Add":
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        return _int(left) + _int(right)
    if op == "Mul":
        if isinstance(left, str) or isinstance(right, str):
            text, times = (left, right) if isinstance(left, str) else (right, left)
            if _int(times) * len(text) > _MAX_FOLDED:
                raise _Unknown
            return text * times
        return _int(left) * _int(right)
    # Mod: printf-style formatting of a string.
    if isinstance(left, str):
        return _percent(left, right if isinstance(right, tuple) else (right,))
    raise _Unknown


def _percent(template: str, args: tuple[Any, ...]) -> str:
    """``template % args`` for the plain specifiers only (no widths: no memory games)."""
    pieces = _PERCENT_SPEC.split(template)
    specs = _PERCENT_SPEC.findall(template)
    if "%" in "".join(pieces):
        raise _Unknown
    out = [pieces[0]]
    remaining = list(args)
    for spec, tail in zip(specs, pieces[1:], strict=True):
        if spec == "%%":
            out.append("%")
        else:
            if not remaining:
                raise _Unknown
            arg = remaining.pop(0)
            out.append(chr(_int(arg) % 0x110000) if spec == "%c" else _text(arg))
        out.append(tail)
    return "".join(out)


def _filter(name: str, base: Any, args: tuple[Any, ...]) -> Any:
    if name in ("string", "trim") and isinstance(base, str | int):
        return _text(base).strip() if name == "trim" else _text(base)
    if name in ("lower", "upper", "capitalize", "title") and isinstance(base, str):
        return getattr(base, name)()
    if name == "reverse":
        return _sequence(base)[::-1]
    if name == "list":
        return tuple(_sequence(base))
    if name in ("first", "last"):
        sequence = _sequence(base)
        if not sequence:
            raise _Unknown
        return sequence[0] if name == "first" else sequence[-1]
    if name == "join":
        separator = _text(args[0]) if args else ""
        return separator.join(_text(item) for item in _sequence(base))
    if name == "replace" and isinstance(base, str) and len(args) >= 2:
        result = base.replace(_text(args[0]), _text(args[1]))
        if len(result) > _MAX_FOLDED:
            raise _Unknown
        return result
    if name == "format" and isinstance(base, str):
        return _percent(base, args)
    raise _Unknown


def _method(name: str, base: Any, args: tuple[Any, ...]) -> Any:
    if name == "join" and isinstance(base, str) and len(args) == 1:
        return base.join(_text(item) for item in _sequence(args[0]))
    if name in ("lower", "upper", "strip", "capitalize", "title") and isinstance(base, str):
        return getattr(base, name)()
    if name == "replace" and isinstance(base, str) and len(args) == 2:
        return _filter("replace", base, args)
    if name == "format" and isinstance(base, str) and re.fullmatch(r"(?:[^{}]|\{\d*\})*", base):
        # Plain positional fields only; anything fancier is reported, never evaluated.
        counter = iter(range(len(args)))

        def field(match: re.Match[str]) -> str:
            index = int(match.group(1)) if match.group(1) else next(counter, len(args))
            if index >= len(args):
                raise _Unknown
            return _text(args[index])

        return re.sub(r"\{(\d*)\}", field, base)
    raise _Unknown

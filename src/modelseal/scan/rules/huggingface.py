"""Hugging Face repositories: custom code (``auto_map``, ``.py`` files).

``trust_remote_code=True`` makes transformers import the ``.py`` files a repository's
``config.json`` / ``tokenizer_config.json`` name in ``auto_map`` (and
``custom_pipelines``): that code runs with the user's rights. So:

* every ``auto_map``/``custom_pipelines`` reference is reported (which class, from
  which file): **low** when the file is in the repository (its own scan follows),
  **medium** when it lives in another repository (``other/repo--module.Class``) or
  is missing (it would be fetched at load time, unscanned);
* every ``.py`` file is parsed with :mod:`ast` (never imported) and reported:
  **low** "custom code" for each file (harmless when the file is only torch and
  transformers code, but it still runs), **medium** for imports of process,
  network or native-code modules, **high** for calls that run commands, open
  connections, evaluate code or load pickles, and **critical** for payload shapes
  (``exec``/``eval`` of decoded or decompressed data, download-and-run or
  reverse-shell commands). ``.py`` members of TorchScript archives are TorchScript
  source, not Python that runs, and are left to the TorchScript checks;
* chat templates (in these configs and anywhere else) are the business of
  :mod:`modelseal.scan.rules.chat_template`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity

__all__ = ["HuggingFaceConfigRule", "PythonCodeRule", "analyze_python"]

#: Largest config/template file read (tokenizer configs reach a few MB).
MAX_CONFIG_BYTES = 64 * 1024 * 1024
#: Largest ``.py`` file parsed.
MAX_PYTHON_BYTES = 16 * 1024 * 1024

_REMOTE_CODE = RuleInfo(
    "MS-HF-REMOTE-CODE",
    "Custom code runs with trust_remote_code",
    "auto_map / custom_pipelines name a class in a .py file of the repository; loading "
    "the model with trust_remote_code=True imports and runs that file.",
    Severity.LOW,
)
_REMOTE_CODE_ELSEWHERE = RuleInfo(
    "MS-HF-REMOTE-CODE-ELSEWHERE",
    "Custom code comes from outside the repository",
    "auto_map names code in another repository, or a .py file that is not present: it "
    "would be downloaded at load time and was not scanned.",
    Severity.MEDIUM,
)
_PY_CODE = RuleInfo(
    "MS-PY-CODE",
    "Python code file",
    "A Python file in a model repository: it runs when a loader imports it "
    "(trust_remote_code, custom handlers).",
    Severity.LOW,
)
_PY_IMPORT = RuleInfo(
    "MS-PY-RISKY-IMPORT",
    "Python code imports process, network or native-code modules",
    "The file imports modules that run commands, open connections or load native code.",
    Severity.MEDIUM,
)
_PY_CALL = RuleInfo(
    "MS-PY-DANGEROUS-CALL",
    "Python code runs commands, opens connections or evaluates code",
    "The file calls functions that run processes, reach the network, evaluate code, "
    "load pickles or delete files.",
    Severity.HIGH,
)
_PY_PAYLOAD = RuleInfo(
    "MS-PY-PAYLOAD",
    "Python code has the shape of a payload",
    "exec/eval of decoded or decompressed data, download-and-run commands or a reverse "
    "shell: what malicious model code looks like.",
    Severity.CRITICAL,
)

_CONFIG_NAMES = frozenset(
    {
        "config.json",
        "tokenizer_config.json",
        "chat_template.json",
        "processor_config.json",
        "preprocessor_config.json",
    }
)
_REFERENCE = re.compile(r"^(?:(?P<repo>[\w.-]+(?:/[\w.-]+)?)--)?(?P<module>[\w.]+)\.(?P<cls>\w+)$")

#: Modules whose import alone is worth a look (module -> why).
_RISKY_MODULES: dict[str, str] = {
    "subprocess": "runs processes",
    "pty": "spawns terminals",
    "socket": "opens network connections",
    "ctypes": "loads native code",
    "cffi": "loads native code",
    "requests": "reaches the network",
    "httpx": "reaches the network",
    "urllib3": "reaches the network",
    "urllib.request": "reaches the network",
    "http.client": "reaches the network",
    "ftplib": "reaches the network",
    "smtplib": "sends mail",
    "telnetlib": "reaches the network",
    "paramiko": "opens SSH connections",
    "webbrowser": "opens a browser",
    "runpy": "runs modules",
    "code": "runs an interpreter",
    "marshal": "loads code objects",
}

#: Calls that do something a model definition has no business doing (name -> why).
_DANGEROUS_CALLS: dict[str, str] = {
    "builtins.eval": "evaluates Python",
    "builtins.exec": "executes Python",
    "builtins.compile": "compiles Python",
    "builtins.__import__": "imports a module by name",
    "importlib.import_module": "imports a module by name",
    "os.system": "runs a shell command",
    "os.popen": "runs a shell command",
    "os.fork": "forks the process",
    "os.dup2": "rewires file descriptors (reverse shells)",
    "os.remove": "deletes files",
    "os.unlink": "deletes files",
    "os.rmdir": "deletes directories",
    "os.removedirs": "deletes directories",
    "shutil.rmtree": "deletes directory trees",
    "pty.spawn": "spawns a terminal",
    "socket.socket": "opens a network socket",
    "socket.create_connection": "opens a network connection",
    "urllib.request.urlopen": "downloads data",
    "urllib.request.urlretrieve": "downloads files",
    "http.client.HTTPConnection": "opens an HTTP connection",
    "http.client.HTTPSConnection": "opens an HTTPS connection",
    "ctypes.CDLL": "loads a native library",
    "ctypes.cdll.LoadLibrary": "loads a native library",
    "marshal.loads": "loads a code object",
    "pickle.loads": "unpickles data (runs code)",
    "pickle.load": "unpickles data (runs code)",
    "dill.loads": "unpickles data (runs code)",
    "dill.load": "unpickles data (runs code)",
    "cloudpickle.loads": "unpickles data (runs code)",
    "torch.hub.load": "downloads and runs code",
    "runpy.run_path": "runs a Python file",
    "runpy.run_module": "runs a module",
    "webbrowser.open": "opens a browser",
}
#: Whole modules every call of which is dangerous (module -> why).
_DANGEROUS_CALL_MODULES: dict[str, str] = {
    "subprocess": "runs a process",
    "requests": "reaches the network",
    "httpx": "reaches the network",
    "urllib3": "reaches the network",
    "paramiko": "opens an SSH connection",
    "ftplib": "reaches the network",
    "smtplib": "sends mail",
}
_DANGEROUS_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn")
#: Calls that decode or decompress data: exec/eval of their result is a payload.
_DECODERS = frozenset(
    {
        "base64.b64decode",
        "base64.b32decode",
        "base64.b16decode",
        "base64.b85decode",
        "base64.a85decode",
        "base64.decodebytes",
        "base64.urlsafe_b64decode",
        "codecs.decode",
        "zlib.decompress",
        "gzip.decompress",
        "bz2.decompress",
        "lzma.decompress",
        "marshal.loads",
        "bytes.fromhex",
        "binascii.unhexlify",
        "binascii.a2b_base64",
    }
)
_EXECUTORS = frozenset({"builtins.exec", "builtins.eval", "builtins.compile"})
_COMMANDS = frozenset({"os.system", "os.popen", "pty.spawn"})
_PAYLOAD_COMMAND = re.compile(
    r"(?:curl|wget)\b[^|;]*\|\s*(?:ba|z)?sh\b|/dev/tcp/|\bnc\b[^;|]*\s-e\s|\bbash\s+-i\b"
    r"|\bpowershell\b.*-enc",
    re.IGNORECASE,
)
_BUILTINS = frozenset({"eval", "exec", "compile", "__import__", "open", "getattr"})


class HuggingFaceConfigRule(Rule):
    """``auto_map``/``custom_pipelines`` references in HF config files."""

    formats = frozenset({Format.JSON})
    infos = (_REMOTE_CODE, _REMOTE_CODE_ELSEWHERE)

    def applies_to(self, entry: Entry, options: ScanOptions) -> bool:
        """Known config file names (JSON)."""
        return entry.name in _CONFIG_NAMES and entry.format is Format.JSON

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Report remote-code references (chat templates: :mod:`.chat_template`)."""
        text = _read_text(entry, MAX_CONFIG_BYTES)
        try:
            config = json.loads(text)
        except RecursionError as exc:
            raise LimitExceededError(f"{entry.path}: JSON nested too deeply") from exc
        except ValueError as exc:
            raise FormatError(f"{entry.path}: not valid JSON ({exc})") from exc
        if isinstance(config, dict):
            yield from self._remote_code(entry, config)

    def _remote_code(self, entry: Entry, config: dict[str, Any]) -> Iterator[Finding]:
        references: list[tuple[str, str]] = []
        auto_map = config.get("auto_map")
        if isinstance(auto_map, dict):
            for auto_class, value in auto_map.items():
                values = value if isinstance(value, list) else [value]
                references += [(f"auto_map.{auto_class}", v) for v in values if v]
        pipelines = config.get("custom_pipelines")
        if isinstance(pipelines, dict):
            for task, spec in pipelines.items():
                if isinstance(spec, dict):
                    for framework in ("impl", "pt", "tf"):
                        if isinstance(spec.get(framework), str):
                            location = f"custom_pipelines.{task}.{framework}"
                            references.append((location, spec[framework]))
        for location, reference in references:
            match = _REFERENCE.match(reference) if isinstance(reference, str) else None
            if match is None:
                yield Finding(
                    _REMOTE_CODE_ELSEWHERE.id,
                    _REMOTE_CODE_ELSEWHERE.default_severity,
                    f"{location} holds an unrecognised code reference {reference!r}",
                    location,
                )
                continue
            module, cls, repo = match["module"], match["cls"], match["repo"]
            filename = module.replace(".", "/") + ".py"
            if repo:
                yield Finding(
                    _REMOTE_CODE_ELSEWHERE.id,
                    _REMOTE_CODE_ELSEWHERE.default_severity,
                    f"trust_remote_code would download and run class {cls} from {filename} "
                    f"of another repository, {repo}",
                    location,
                )
            elif not entry.is_member and not (Path(entry.path).parent / filename).is_file():
                yield Finding(
                    _REMOTE_CODE_ELSEWHERE.id,
                    _REMOTE_CODE_ELSEWHERE.default_severity,
                    f"trust_remote_code would run class {cls} from {filename}, which is not "
                    "in this directory (it would be fetched at load time, unscanned)",
                    location,
                )
            else:
                yield Finding(
                    _REMOTE_CODE.id,
                    _REMOTE_CODE.default_severity,
                    f"trust_remote_code runs class {cls} from {filename}",
                    location,
                )


class PythonCodeRule(Rule):
    """Static analysis of ``.py`` files (never imported): imports and dangerous calls."""

    formats = frozenset({Format.PYTHON})
    infos = (_PY_CODE, _PY_IMPORT, _PY_CALL, _PY_PAYLOAD)

    def applies_to(self, entry: Entry, options: ScanOptions) -> bool:
        """Python files, except TorchScript source inside TorchScript archives."""
        return entry.format is Format.PYTHON and entry.container_format is not Format.TORCHSCRIPT

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Parse the file and yield its findings."""
        yield from analyze_python(_read_text(entry, MAX_PYTHON_BYTES), entry.path)


def analyze_python(source: str, path: str = "<source>") -> list[Finding]:
    """Findings for Python ``source``, from its AST (nothing is imported or run).

    Raises :class:`FormatError` when the source does not parse.
    """
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise FormatError(
            f"{path}: Python code does not parse (line {exc.lineno}: {exc.msg})"
        ) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise LimitExceededError(f"{path}: Python code is too deeply nested to analyse") from exc
    visitor = _CodeVisitor()
    try:
        visitor.visit(tree)
    except RecursionError as exc:
        raise LimitExceededError(f"{path}: Python code is too deeply nested to analyse") from exc
    imported = sorted({name.split(".")[0] for name in visitor.imports if not name.startswith(".")})
    summary = Finding(
        _PY_CODE.id,
        _PY_CODE.default_severity,
        "custom Python code: runs when a loader imports it (trust_remote_code); imports "
        + (", ".join(imported[:12]) + (" ..." if len(imported) > 12 else "") or "nothing"),
        "",
    )
    return [summary, *dict.fromkeys(visitor.findings)]


class _CodeVisitor(ast.NodeVisitor):
    """Collects imports and dangerous calls, resolving import aliases."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.imports: list[str] = []
        self.findings: list[Finding] = []
        self.function_depth = 0
        self.calls: set[str] = set()

    # Aliases are collected in a first pass so calls before imports still resolve.
    def visit_Module(self, node: ast.Module) -> None:
        for child in ast.walk(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(child, ast.ImportFrom):
                base = "." * child.level + (child.module or "")
                for alias in child.names:
                    full = f"{base}.{alias.name}" if child.module else f"{base}{alias.name}"
                    self.aliases[alias.asname or alias.name] = full
        self.generic_visit(node)
        if "os.dup2" in self.calls and any(c.startswith("socket.") for c in self.calls):
            self.findings.append(
                Finding(
                    _PY_PAYLOAD.id,
                    _PY_PAYLOAD.default_severity,
                    "connects a socket and rewires stdin/stdout onto it (a reverse shell)",
                    "",
                )
            )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.record_import(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.imports.append("." + (node.module or ""))
            return
        module = node.module or ""
        self.record_import(module, node)
        for alias in node.names:
            if f"{module}.{alias.name}" in _RISKY_MODULES:
                self.record_import(f"{module}.{alias.name}", node)

    def record_import(self, module: str, node: ast.AST) -> None:
        self.imports.append(module)
        risky = next((m for m in _RISKY_MODULES if module == m or module.startswith(m + ".")), None)
        if risky is not None:
            self.add(_PY_IMPORT, f"imports {module} ({_RISKY_MODULES[risky]})", node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        name = self.resolve(node.func)
        if name is not None:
            self.calls.add(name)
            self.check_call(name, node)
        self.generic_visit(node)

    def check_call(self, name: str, node: ast.Call) -> None:
        when = "at import time" if self.function_depth == 0 else "when called"
        if name in _EXECUTORS and node.args:
            decoded = self.decoded_argument(node.args[0])
            if decoded is not None:
                self.add(
                    _PY_PAYLOAD,
                    f"{name.split('.')[-1]}() runs code decoded with {decoded} ({when})",
                    node,
                )
                return
        if name in _COMMANDS or name.startswith("subprocess."):
            command = _literal_text(node.args[0]) if node.args else None
            if command and _PAYLOAD_COMMAND.search(command):
                self.add(_PY_PAYLOAD, f"{name}() runs {command[:80]!r} ({when})", node)
                return
        if name == "builtins.__import__" or name == "importlib.import_module":
            target = _literal_text(node.args[0]) if node.args else None
            if target is not None:
                self.record_import(target, node)
                return
        reason = _DANGEROUS_CALLS.get(name)
        if reason is None and name.startswith(_DANGEROUS_PREFIXES):
            reason = "runs a program"
        if reason is None:
            module = next((m for m in _DANGEROUS_CALL_MODULES if name.startswith(m + ".")), None)
            if module is not None:
                reason = _DANGEROUS_CALL_MODULES[module]
        if name == "builtins.getattr" and len(node.args) >= 2:
            target = self.resolve(node.args[0])
            if target in ("os", "builtins", "subprocess", "sys", "importlib") and not isinstance(
                node.args[1], ast.Constant
            ):
                reason = f"reads a computed attribute of {target}"
        if reason is not None:
            self.add(_PY_CALL, f"calls {name}() which {reason} ({when})", node)

    def decoded_argument(self, node: ast.expr) -> str | None:
        """The decoder feeding ``node`` (``base64.b64decode``...), if any."""
        for child in ast.walk(node):
            if isinstance(child, ast.Call):
                called = self.resolve(child.func)
                if called in _DECODERS:
                    return called
                if isinstance(child.func, ast.Attribute) and child.func.attr in (
                    "fromhex",
                    "decompress",
                    "b64decode",
                ):
                    return child.func.attr
        return None

    def resolve(self, node: ast.expr) -> str | None:
        """The dotted name a call target refers to, through import aliases."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Call) and node.args:
            # __import__("os").system / importlib.import_module("os").system
            importer = self.resolve(node.func)
            module = _literal_text(node.args[0])
            if importer in ("builtins.__import__", "importlib.import_module") and module:
                return ".".join([module, *reversed(parts)])
            return None
        if not isinstance(node, ast.Name):
            return None
        base = self.aliases.get(node.id)
        if base is None:
            if node.id in _BUILTINS and not parts:
                base = f"builtins.{node.id}"
            elif node.id == "builtins" or node.id == "__builtins__":
                base = "builtins"
            else:
                return None
        return ".".join([base, *reversed(parts)])

    def add(self, info: RuleInfo, message: str, node: ast.AST) -> None:
        line = getattr(node, "lineno", 0)
        self.findings.append(
            Finding(info.id, info.default_severity, message, f"line {line}" if line else "")
        )


def _literal_text(node: ast.expr) -> str | None:
    """The text of a string literal, a list of them, or an f-string's literal parts."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        parts = [_literal_text(item) for item in node.elts]
        return " ".join(p for p in parts if p) or None
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    return None


def _read_text(entry: Entry, limit: int) -> str:
    with entry.open() as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise LimitExceededError(f"{entry.path}: larger than {limit:,} bytes; not analysed")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{entry.path}: not valid UTF-8 text ({exc.reason})") from exc

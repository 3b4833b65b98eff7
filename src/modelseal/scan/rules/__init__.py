"""The registry of scan rules, imported lazily.

To add a rule, write a module here with a :class:`~modelseal.scan.interface.Rule`
subclass and list it in ``_RULES``.
"""

from __future__ import annotations

import importlib
from functools import cache

from modelseal.scan.interface import Rule
from modelseal.scan.model import RuleInfo

__all__ = ["all_rules", "rule_catalog"]

_RULES: tuple[str, ...] = (
    "modelseal.scan.rules.inventory:InventoryRule",
    "modelseal.scan.rules.archive:ArchiveRule",
    "modelseal.scan.rules.savedmodel:SavedModelRule",
    "modelseal.scan.rules.onnx:OnnxRule",
    "modelseal.scan.rules.keras:KerasRule",
    "modelseal.scan.rules.pickle:PickleRule",
    "modelseal.scan.rules.gguf:GgufRule",
    "modelseal.scan.rules.safetensors:SafetensorsRule",
    "modelseal.scan.rules.huggingface:HuggingFaceConfigRule",
    "modelseal.scan.rules.huggingface:PythonCodeRule",
    "modelseal.scan.rules.chat_template:ChatTemplateRule",
    "modelseal.scan.rules.weights:WeightsRule",
)


@cache
def all_rules() -> tuple[Rule, ...]:
    """One instance of every registered rule."""
    rules = []
    for target in _RULES:
        module_name, _, class_name = target.partition(":")
        rules.append(getattr(importlib.import_module(module_name), class_name)())
    return tuple(rules)


def rule_catalog() -> dict[str, RuleInfo]:
    """Every rule id that any registered rule can emit, with its description."""
    return {info.id: info for rule in all_rules() for info in rule.infos}

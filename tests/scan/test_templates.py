"""Chat-template analysis: vendors' templates stay clean, published attacks are caught."""

from __future__ import annotations

import pytest

from modelseal.errors import LimitExceededError
from modelseal.scan.model import Severity
from modelseal.scan.templates import TEMPLATE_RULES, TemplateError, scan_template
from tests.samples.chat_templates import ATTACK_TEMPLATES, BENIGN_TEMPLATES
from tests.samples.resources import measure


@pytest.mark.parametrize("name", sorted(BENIGN_TEMPLATES))
def test_real_templates_are_clean(name: str) -> None:
    assert scan_template(BENIGN_TEMPLATES[name], name) == []


@pytest.mark.parametrize("name", sorted(ATTACK_TEMPLATES))
def test_attack_templates_are_flagged(name: str) -> None:
    template, rule = ATTACK_TEMPLATES[name]
    findings = scan_template(template, "tokenizer.chat_template")
    assert rule in {f.rule for f in findings}
    assert max(f.severity.rank for f in findings) >= Severity.HIGH.rank
    assert all(f.location.startswith("tokenizer.chat_template:") for f in findings)


def test_escapes_reaching_code_are_critical() -> None:
    for name in ("cve-2024-34359", "cycler-globals", "set-concat-subscript", "reversed-name"):
        findings = scan_template(ATTACK_TEMPLATES[name][0], name)
        assert any(f.severity is Severity.CRITICAL for f in findings), name


def test_findings_say_what_is_reached_and_where() -> None:
    template = "hello\n{{ cycler.__init__.__globals__.os.popen('true') }}"
    findings = scan_template(template, "tokenizer.chat_template")
    messages = " ".join(f.message for f in findings)
    assert "'__globals__'" in messages
    assert "'popen'" in messages
    assert {f.location for f in findings} == {"tokenizer.chat_template:2"}


def test_benign_look_alikes_stay_clean() -> None:
    look_alikes = [
        "{{ message['role'] == 'system' }}",  # 'system' as data, not an attribute
        "{{ message|attr('content') }}",  # attr filter with an ordinary name
        "{% set sep = '_' * 2 %}{{ sep ~ 'end' }}",  # builds '__end', not a dunder
        "{% for g in messages %}{{ g.content }}{% endfor %}",  # 'g' bound by the loop
        "{% set ns = namespace(found=false) %}{% for i in range(3) %}{% endfor %}",
        "{{ messages[loop.index0 + 1]['content'] if loop is defined }}",
        "{{ '%s: %s'|format(message.role, message.content) }}",
        "{{ tools|tojson(indent=2) }}{{ strftime_now('%Y-%m-%d') }}",
        "{% set ns = namespace(system='') %}{% set ns.system = 'x' %}{{ ns.system }}",
    ]
    for template in look_alikes:
        assert scan_template(template, "t") == [], template


def test_namespace_lookalike_does_not_hide_real_access() -> None:
    template = "{% set ns = namespace(a=1) %}{% set ns = cycler %}{{ ns.os }}"
    assert "MS-TEMPLATE-PYTHON-INTERNALS" in {f.rule for f in scan_template(template, "t")}


def test_invalid_templates_are_errors() -> None:
    with pytest.raises(TemplateError, match="does not parse"):
        scan_template("{% for x in messages %}{{ x }", "tokenizer.chat_template")


def test_oversized_and_deep_templates_are_limit_errors() -> None:
    with pytest.raises(LimitExceededError):
        scan_template("a" * 1_000_001, "t")
    with pytest.raises((LimitExceededError, TemplateError)):
        scan_template("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "t")


def test_format_width_games_do_not_allocate() -> None:
    with measure() as usage:
        findings = scan_template("{{ ''|attr('%999999999s'|format('x')) }}", "t")
    assert usage.peak_bytes < 64 * 1024 * 1024  # the 1 GB padded string is never built
    assert [f.rule for f in findings] == ["MS-TEMPLATE-COMPUTED-NAME"]


def test_rule_catalogue_is_well_formed() -> None:
    ids = [info.id for info in TEMPLATE_RULES]
    assert len(ids) == len(set(ids))
    assert all(
        i.startswith("MS-TEMPLATE-") and info.description
        for i, info in zip(ids, TEMPLATE_RULES, strict=True)
    )

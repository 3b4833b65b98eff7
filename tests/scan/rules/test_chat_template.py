"""Chat templates found by content: any JSON/YAML with ``chat_template``, any ``.jinja``/``.j2``."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from modelseal.scan import FileResult, Verdict, scan
from modelseal.scan.rules.chat_template import find_templates
from tests.samples.chat_templates import BENIGN_TEMPLATES

SSTI = "{{ cycler.__init__.__globals__.os.popen('true').read() }}"


def _one(path: Path) -> FileResult:
    (result,) = scan([path]).results
    return result


def _yaml_block(template: str) -> str:
    return "\n".join("    " + line for line in template.splitlines()) + "\n"


def test_yaml_config_with_a_malicious_template_is_malicious(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("model: tiny\nserving:\n  port: 8000\n  chat_template: |\n" + _yaml_block(SSTI))
    result = _one(path)
    assert result.verdict is Verdict.MALICIOUS
    assert {f.rule for f in result.findings} >= {"MS-TEMPLATE-PYTHON-INTERNALS"}
    assert all(f.location.startswith("serving.chat_template:") for f in result.findings)


def test_template_file_of_any_name_is_checked(tmp_path: Path) -> None:
    (tmp_path / "my_template.j2").write_text(SSTI)
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "llama.jinja2").write_text(BENIGN_TEMPLATES["llama-3"])
    results = {Path(r.path).name: r for r in scan([tmp_path]).results}
    assert results["my_template.j2"].verdict is Verdict.MALICIOUS
    assert results["llama.jinja2"].verdict is Verdict.CLEAN


def test_generation_config_with_a_template_list_is_malicious(tmp_path: Path) -> None:
    path = tmp_path / "generation_config.json"
    templates = [
        {"name": "default", "template": BENIGN_TEMPLATES["chatml"]},
        {"name": "tool_use", "template": SSTI},
    ]
    path.write_text(json.dumps({"temperature": 0.7, "chat_template": templates}))
    result = _one(path)
    assert result.verdict is Verdict.MALICIOUS
    assert {f.location.split(":")[0] for f in result.findings} == {"chat_template[tool_use]"}


def test_escaped_key_in_json_is_found(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"chat\\u005Ftemplate": ' + json.dumps(SSTI) + "}")
    assert _one(path).verdict is Verdict.MALICIOUS


def test_template_in_a_json_member_of_a_zip_is_found(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cfg/app.json", json.dumps({"llm": {"chat_template": SSTI}}))
    results = scan([path]).results
    assert results[0].verdict is Verdict.MALICIOUS
    assert results[1].path.endswith("!cfg/app.json")


@pytest.mark.parametrize("name", sorted(BENIGN_TEMPLATES))
def test_real_templates_in_configs_are_clean(tmp_path: Path, name: str) -> None:
    template = BENIGN_TEMPLATES[name]
    (tmp_path / "server.yml").write_text("chat_template: |\n" + _yaml_block(template))
    (tmp_path / "gen.json").write_text(json.dumps({"chat_template": template}))
    (tmp_path / "t.j2").write_text(template)
    report = scan([tmp_path])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN] * 3
    assert not any(f for r in report.results for f in r.findings)


def test_configs_without_templates_are_clean(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "model: tiny\nlayers: [1, 2, 3]\nuse_chat_template: true\n"
    )
    (tmp_path / "chart.yaml").write_text("name: {{ .Values.name }}\n  bad: [\n")  # broken, no key
    (tmp_path / "data.json").write_text(json.dumps({"prompt": "{{ user }}", "chat_template": None}))
    (tmp_path / "readme.json").write_text('{"note": "set chat_template in the tokenizer"')
    report = scan([tmp_path])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN] * 4


def test_template_that_does_not_parse_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "broken.jinja").write_text("{% for m in messages %}{{ m.content }")
    (tmp_path / "app.yaml").write_text("chat_template: '{% if x %}unclosed'\n")
    (tmp_path / "gen.json").write_text(json.dumps({"chat_template": "{{ 1 + }}"}))
    report = scan([tmp_path])
    assert [r.verdict for r in report.results] == [Verdict.ERROR] * 3
    assert all("does not parse" in (r.error or "") for r in report.results)


def test_broken_file_that_carries_a_template_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("chat_template: [unclosed\n")
    (tmp_path / "bad.json").write_text('{"chat_template": "{{ x }}",')
    report = scan([tmp_path])
    assert [r.verdict for r in report.results] == [Verdict.ERROR] * 2


def test_yaml_is_read_with_the_safe_loader(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("chat_template: !!python/object/apply:os.system ['true']\n")
    result = _one(path)
    assert result.verdict is Verdict.ERROR
    assert "not valid YAML" in (result.error or "")


def test_yaml_aliases_are_searched_once() -> None:
    shared: dict[str, object] = {"chat_template": "{{ x }}"}
    document = {"a": [shared] * 50, "b": {"c": shared}}
    assert list(find_templates(document)) == [("a[0].chat_template", "{{ x }}")]

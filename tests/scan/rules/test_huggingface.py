"""Hugging Face repositories: remote code, Python files and chat templates in configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelseal.errors import FormatError
from modelseal.scan import ScanReport, Severity, Verdict, scan
from modelseal.scan.rules.huggingface import analyze_python
from tests.samples.chat_templates import ATTACK_TEMPLATES, BENIGN_TEMPLATES, CVE_2024_34359
from tests.samples.hf import BENIGN_MODELING, MALICIOUS_CODE, write_hf_repo


def _by_name(report: ScanReport) -> dict[str, object]:
    return {Path(r.path).name: r for r in report.results}


def test_benign_custom_code_repo_is_clean_but_says_code_runs(tmp_path: Path) -> None:
    report = scan([write_hf_repo(tmp_path / "repo")])
    results = _by_name(report)
    assert all(r.verdict is Verdict.CLEAN for r in report.results), report.to_dict()
    config = results["config.json"]
    assert {(f.rule, f.severity, f.location) for f in config.findings} == {
        ("MS-HF-REMOTE-CODE", Severity.LOW, "auto_map.AutoConfig"),
        ("MS-HF-REMOTE-CODE", Severity.LOW, "auto_map.AutoModel"),
    }
    assert "class TinyModel from modeling_tiny.py" in " ".join(f.message for f in config.findings)
    code = results["modeling_tiny.py"]
    assert [f.rule for f in code.findings] == ["MS-PY-CODE"]
    assert "torch, transformers" in code.findings[0].message


def test_repo_without_custom_code_has_no_code_findings(tmp_path: Path) -> None:
    report = scan([write_hf_repo(tmp_path / "repo", auto_map=False)])
    assert all(r.findings == () for r in report.results), report.to_dict()


@pytest.mark.parametrize("name", sorted(MALICIOUS_CODE))
def test_malicious_custom_code_is_flagged(tmp_path: Path, name: str) -> None:
    source, rule = MALICIOUS_CODE[name]
    report = scan([write_hf_repo(tmp_path / "repo", modeling=source)])
    code = _by_name(report)["modeling_tiny.py"]
    assert rule in {f.rule for f in code.findings}, code.findings
    expected = Verdict.MALICIOUS if rule == "MS-PY-PAYLOAD" else Verdict.SUSPICIOUS
    assert code.verdict is expected


def test_code_findings_say_when_they_run() -> None:
    findings = analyze_python(MALICIOUS_CODE["subprocess-alias"][0], "m.py")
    call = next(f for f in findings if f.rule == "MS-PY-DANGEROUS-CALL")
    assert "subprocess.Popen" in call.message
    assert "when called" in call.message
    assert call.location == "line 4"
    findings = analyze_python(MALICIOUS_CODE["os-system-at-import"][0], "m.py")
    assert any("os.system" in f.message and "at import time" in f.message for f in findings)


def test_benign_look_alikes_in_code_are_not_flagged() -> None:
    source = BENIGN_MODELING + (
        "\nimport json, base64\n"
        "def load(path):\n"
        "    with open(path) as f:\n"
        "        return json.load(f), base64.b64decode('AAAA')\n"
        "def evaluate(model):\n"
        "    return model.eval()\n"
        "def run(cfg):\n"
        "    return cfg.system('x')\n"  # a method named system on an ordinary object
    )
    assert [f.rule for f in analyze_python(source, "m.py")] == ["MS-PY-CODE"]


def test_unparseable_python_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="does not parse"):
        analyze_python("def broken(:\n", "m.py")
    path = tmp_path / "handler.py"
    path.write_text("print 'python 2'\n")
    (result,) = scan([path]).results
    assert result.verdict is Verdict.ERROR


def test_auto_map_to_another_repository_is_suspicious(tmp_path: Path) -> None:
    repo = write_hf_repo(tmp_path / "repo", auto_map=False)
    config = {"auto_map": {"AutoModel": "someone/other-repo--modeling_x.XModel"}}
    (repo / "config.json").write_text(json.dumps(config))
    (result,) = [r for r in scan([repo]).results if Path(r.path).name == "config.json"]
    assert result.verdict is Verdict.SUSPICIOUS
    assert [f.rule for f in result.findings] == ["MS-HF-REMOTE-CODE-ELSEWHERE"]
    assert "someone/other-repo" in result.findings[0].message


def test_auto_map_to_a_missing_file_is_suspicious(tmp_path: Path) -> None:
    repo = write_hf_repo(tmp_path / "repo")
    (repo / "modeling_tiny.py").unlink()
    (result,) = [r for r in scan([repo]).results if Path(r.path).name == "config.json"]
    assert result.verdict is Verdict.SUSPICIOUS
    assert "not in this directory" in result.findings[0].message


def test_tokenizer_auto_map_lists_are_reported(tmp_path: Path) -> None:
    repo = write_hf_repo(tmp_path / "repo")
    tokenizer = {
        "auto_map": {"AutoTokenizer": ["modeling_tiny.TinyTokenizer", None]},
        "chat_template": BENIGN_TEMPLATES["gemma"],
    }
    (repo / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    (result,) = [r for r in scan([repo]).results if r.path.endswith("tokenizer_config.json")]
    assert [(f.rule, f.location) for f in result.findings] == [
        ("MS-HF-REMOTE-CODE", "auto_map.AutoTokenizer")
    ]


def test_malicious_template_in_tokenizer_config_is_malicious(tmp_path: Path) -> None:
    repo = write_hf_repo(tmp_path / "repo", auto_map=False, chat_template=CVE_2024_34359)
    (result,) = [r for r in scan([repo]).results if r.path.endswith("tokenizer_config.json")]
    assert result.verdict is Verdict.MALICIOUS
    assert all(f.location.startswith("chat_template:") for f in result.findings)


def test_named_template_lists_and_template_files_are_checked(tmp_path: Path) -> None:
    repo = write_hf_repo(tmp_path / "repo", auto_map=False)
    named = [
        {"name": "default", "template": BENIGN_TEMPLATES["chatml"]},
        {"name": "tool_use", "template": ATTACK_TEMPLATES["cycler-globals"][0]},
    ]
    (repo / "tokenizer_config.json").write_text(json.dumps({"chat_template": named}))
    (repo / "chat_template.json").write_text(
        json.dumps({"chat_template": ATTACK_TEMPLATES["join-built-name"][0]})
    )
    (repo / "chat_template.jinja").write_text(ATTACK_TEMPLATES["self-context"][0])
    (repo / "additional_chat_templates").mkdir()
    (repo / "additional_chat_templates" / "rag.jinja").write_text(BENIGN_TEMPLATES["llama-3"])
    results = _by_name(scan([repo]))
    tokenizer = results["tokenizer_config.json"]
    assert tokenizer.verdict is Verdict.MALICIOUS
    assert {f.location.split(":")[0] for f in tokenizer.findings} == {"chat_template[tool_use]"}
    assert results["chat_template.json"].verdict is Verdict.MALICIOUS
    assert results["chat_template.jinja"].verdict is Verdict.MALICIOUS
    assert results["rag.jinja"].verdict is Verdict.CLEAN


def test_torchscript_source_is_not_reported_as_python(tmp_path: Path) -> None:
    import torch

    class Tiny(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(path))
    report = scan([path])
    assert report.results[0].format == "torchscript"
    assert not any(f.rule.startswith("MS-PY-") for r in report.results for f in r.findings)


def test_python_in_a_plain_zip_is_reported(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("code/handler.py", MALICIOUS_CODE["os-system-at-import"][0])
    report = scan([archive])
    member = next(r for r in report.results if r.path.endswith("!code/handler.py"))
    assert "MS-PY-DANGEROUS-CALL" in {f.rule for f in member.findings}
    assert report.results[0].verdict is Verdict.SUSPICIOUS

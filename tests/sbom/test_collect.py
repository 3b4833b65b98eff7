"""Collecting model facts offline: what a user expects to find in the SBOM."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from modelseal.sbom.collect import MAX_JSON_BYTES, collect
from tests.samples.sbom import write_model


def test_collects_card_config_tokenizer_and_tensors(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m", requirements="torch>=2.0\nnumpy==1.26.4\n")
    facts = collect(root)
    assert facts.warnings == ()
    assert facts.name == "org/tiny-sentiment"  # the model-index name
    assert [lic.spdx_id for lic in facts.licenses] == ["Apache-2.0"]
    assert facts.card.languages == ("en", "de")
    assert facts.task == "text-classification"
    assert [(d.name, d.usage) for d in facts.datasets] == [
        ("imdb", "training"),
        ("stanfordnlp/sst2", "training"),
        ("glue", "evaluation"),
    ]
    assert [(b.name, b.relation) for b in facts.base_models] == [("org/base-model", "finetune")]
    (metric,) = facts.metrics
    assert (metric.type, metric.value, metric.dataset, metric.split) == (
        "accuracy",
        "0.91",
        "glue",
        "validation",
    )
    assert facts.card.use_cases == ("Classify the sentiment of short English reviews.",)
    assert facts.card.limitations and facts.card.ethical
    assert facts.architectures == ("BertForSequenceClassification",)
    assert (facts.model_type, facts.torch_dtype, facts.transformers_version) == (
        "bert",
        "float32",
        "4.30.0",
    )
    assert facts.hyperparameters["num_hidden_layers"] == "2"
    assert facts.generation == {"max_length": "64", "do_sample": "False"}
    assert facts.tokenizer.tokenizer_class == "BertTokenizer"
    assert facts.tokenizer.model_type == "WordPiece"
    assert facts.parameter_count == 100 * 16 + 2 * 16 + 2 + 16 * 16 + 16 + 16
    assert facts.dtypes == ("float16", "float32")
    weights = next(f for f in facts.files if f.path == "model.safetensors")
    assert weights.role == "weights" and weights.tensor_count == 6
    assert weights.metadata == {"format": "pt"}
    packages = {p.name: (p.version, p.specifier) for p in facts.packages}
    assert packages["numpy"] == ("1.26.4", None)
    assert packages["torch"] == (None, ">=2.0")
    assert packages["transformers"] == ("4.30.0", None)


def test_hashes_every_file_streaming(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m", extra={"sub/notes.txt": "hello"})
    facts = collect(root, sha512=True)
    by_path = {f.path: f for f in facts.files}
    assert set(by_path) >= {"README.md", "config.json", "model.safetensors", "sub/notes.txt"}
    for path, file in by_path.items():
        data = (root / path).read_bytes()
        assert file.sha256 == hashlib.sha256(data).hexdigest()
        assert file.sha512 == hashlib.sha512(data).hexdigest()
        assert file.size == len(data)


def test_custom_code_and_auto_map_are_recorded_with_a_warning(tmp_path: Path) -> None:
    config = {"model_type": "custom", "auto_map": {"AutoModel": "modeling_custom.CustomModel"}}
    root = write_model(
        tmp_path / "m", config=config, extra={"modeling_custom.py": "print('model')\n"}
    )
    facts = collect(root)
    assert facts.custom_code == ("modeling_custom.py",)
    assert facts.auto_map == {"AutoModel": "modeling_custom.CustomModel"}
    assert any("trust_remote_code" in w for w in facts.warnings)


def test_hf_cache_path_gives_repo_id_and_revision(tmp_path: Path) -> None:
    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / ("ab12" * 10)
    write_model(snapshot)
    facts = collect(snapshot)
    assert (facts.repo_id, facts.revision) == ("acme/tiny", "ab12" * 10)
    assert facts.purl == f"pkg:huggingface/acme/tiny@{'ab12' * 10}"


def test_single_file(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m")
    facts = collect(root / "model.safetensors")
    assert [f.path for f in facts.files] == ["model.safetensors"]
    assert facts.parameter_count == 1922
    assert any("no README.md" in w for w in facts.warnings)


# --- bad input: a valid result and a warning, never a crash ----------------------------


def test_no_readme(tmp_path: Path) -> None:
    facts = collect(write_model(tmp_path / "m", card=None))
    assert not facts.card.present and facts.licenses == () and facts.datasets == ()
    assert any("no README.md" in w for w in facts.warnings)
    assert facts.parameter_count == 1922


def test_malformed_front_matter(tmp_path: Path) -> None:
    facts = collect(write_model(tmp_path / "m", card="---\nlicense: [mit\n---\n# T\n"))
    assert facts.licenses == ()
    assert any("malformed front matter" in w for w in facts.warnings)
    assert facts.card.title == "T"


def test_unclosed_and_non_mapping_front_matter(tmp_path: Path) -> None:
    facts = collect(write_model(tmp_path / "a", card="---\nlicense: mit\n# no end\n"))
    assert any("not closed" in w for w in facts.warnings)
    facts = collect(write_model(tmp_path / "b", card="---\n- a\n- b\n---\nbody\n"))
    assert any("not a mapping" in w for w in facts.warnings)


def test_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["---", "a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}]" for i in range(9)]
    facts = collect(write_model(tmp_path / "m", card="\n".join([*lines, "---", ""])))
    assert any("aliases are not allowed" in w for w in facts.warnings)


def test_unknown_license_is_kept_as_named(tmp_path: Path) -> None:
    card = "---\nlicense: my-own-license-1.0\n---\n"
    facts = collect(write_model(tmp_path / "m", card=card))
    (lic,) = facts.licenses
    assert (lic.spdx_id, lic.name, lic.known) == (None, "my-own-license-1.0", False)
    assert any("my-own-license-1.0" in w for w in facts.warnings)


def test_invalid_config_json(tmp_path: Path) -> None:
    facts = collect(write_model(tmp_path / "m", config="{not json"))
    assert facts.architectures == () and facts.model_type is None
    assert any("config.json: invalid JSON" in w for w in facts.warnings)
    assert facts.parameter_count == 1922


def test_config_json_not_an_object_and_too_deep(tmp_path: Path) -> None:
    facts = collect(write_model(tmp_path / "a", config="[1, 2]"))
    assert any("expected a JSON object" in w for w in facts.warnings)
    facts = collect(write_model(tmp_path / "b", config="[" * 100_000 + "]" * 100_000))
    assert any("config.json: invalid JSON" in w for w in facts.warnings)


def test_huge_config_json_is_not_parsed(tmp_path: Path) -> None:
    blob = json.dumps({"model_type": "bert", "pad": "x" * (MAX_JSON_BYTES + 10)})
    facts = collect(write_model(tmp_path / "m", config=blob))
    assert facts.model_type is None
    assert any("over the" in w and "config.json" in w for w in facts.warnings)
    assert next(f for f in facts.files if f.path == "config.json").sha256 is not None


def test_broken_safetensors_header(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m")
    (root / "model.safetensors").write_bytes(b'\x08\0\0\0\0\0\0\0{"a": 1}')
    facts = collect(root)
    assert facts.parameter_count is None
    assert any("model.safetensors" in w for w in facts.warnings)


def test_bad_model_index_and_requirements(tmp_path: Path) -> None:
    card = "---\nmodel-index: 3\ndatasets: [ok]\n---\n"
    root = write_model(tmp_path / "m", card=card, requirements="numpy==1.0\n!!!\n")
    facts = collect(root)
    assert [d.name for d in facts.datasets] == ["ok"]
    assert any("model-index" in w for w in facts.warnings)
    assert any("requirements.txt:2" in w for w in facts.warnings)
    assert any(p.name == "numpy" for p in facts.packages)


def test_known_digests_are_not_hashed_again(tmp_path: Path) -> None:
    model = write_model(tmp_path / "m")
    plain = {f.path: f.sha256 for f in collect(model).files}
    known = {path: "ab" * 32 for path in plain}
    given = {f.path: f.sha256 for f in collect(model, known_sha256=known).files}
    assert given == known  # taken as given: the caller (the registry) verified them
    assert {f.path: f.sha256 for f in collect(model, known_sha256={}).files} == plain

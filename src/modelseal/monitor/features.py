"""Which layers the monitor watches, and how a layer's output becomes one vector per input.

Everything here that touches torch imports it inside the function, so importing this module does
not need torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelseal.monitor.errors import BaselineError, require_torch

__all__ = [
    "STAT_NAMES",
    "default_layers",
    "find_modules",
    "layer_statistics",
    "output_logits",
    "reduce_features",
]

#: The cheap per-input statistics kept for every monitored layer, in this order.
STAT_NAMES: tuple[str, ...] = ("norm", "mean", "std", "max_abs")


def default_layers(model: Any) -> tuple[str, ...]:
    """The layer the monitor watches by default: the penultimate layer with weights.

    Leaf modules that own parameters are taken in registration order; the second-to-last is the
    layer feeding the classifier head (its output is the penultimate *pre-activation* feature
    when an activation follows it). A model with a single such layer uses that one.
    """
    leaves = [
        name
        for name, module in model.named_modules()
        if name
        and not any(True for _ in module.children())
        and any(True for _ in module.parameters(recurse=False))
    ]
    if not leaves:
        raise BaselineError(
            "the model has no layer with weights to monitor",
            advice="pass layers=[...] naming the module(s) to monitor",
        )
    return (leaves[-2] if len(leaves) >= 2 else leaves[-1],)


def find_modules(model: Any, names: Sequence[str]) -> list[Any]:
    """The modules of ``model`` called ``names`` (as in ``model.named_modules()``)."""
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules]
    if missing:
        sample = ", ".join(list(modules)[1:8])
        raise BaselineError(
            f"the model has no module named {', '.join(map(repr, missing))}",
            advice=f"name modules as model.named_modules() does (e.g. {sample})",
        )
    return [modules[name] for name in names]


def reduce_features(output: Any) -> Any:
    """One float vector per input from a layer output: shape (batch, features).

    (B, D) is kept; (B, T, D) sequences are averaged over T; (B, C, ...) feature maps are
    averaged over their spatial dimensions. Tuples (as some layers return) use their first item.
    """
    torch = require_torch()
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor):  # type: ignore[attr-defined]
        raise BaselineError(
            f"a monitored layer returned {type(output).__name__}, not a tensor",
            advice="monitor a layer whose output is a tensor",
        )
    x = output.detach()
    if not x.is_floating_point():
        x = x.float()
    if x.ndim == 1:
        return x.unsqueeze(1)
    if x.ndim == 2:
        return x
    if x.ndim == 3:
        return x.mean(dim=1)
    return x.flatten(2).mean(dim=2)


def layer_statistics(features: Any) -> Any:
    """Per-input (norm, mean, std, max_abs) of reduced features (B, D): shape (B, 4).

    Computed from two reductions and a max (the standard deviation from the norm and the mean),
    to keep the per-forward cost of the hook small.
    """
    torch = require_torch()
    width = features.shape[1]
    norm = torch.linalg.vector_norm(features, dim=1)  # type: ignore[attr-defined]
    mean = features.mean(dim=1)
    var = (norm * norm).div_(width).sub_(mean * mean).clamp_(min=0.0)
    return torch.stack(  # type: ignore[attr-defined]
        (norm, mean, var.sqrt_(), features.abs().amax(dim=1)), dim=1
    )


def output_logits(output: Any) -> Any | None:
    """The (B, C) class scores in a model output, or ``None`` if it does not look like them."""
    torch = require_torch()
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if hasattr(output, "logits"):
        output = output.logits
    if isinstance(output, torch.Tensor) and output.ndim == 2 and output.shape[1] >= 2:  # type: ignore[attr-defined]
        return output.detach()
    return None

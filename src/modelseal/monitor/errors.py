"""Errors of the runtime monitor (all :class:`~modelseal.errors.MonitorError`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelseal.errors import MonitorError

if TYPE_CHECKING:
    from modelseal.monitor.watch import AnomalyEvent

__all__ = [
    "AnomalyBlockedError",
    "BaselineError",
    "MonitorError",
    "TorchUnavailableError",
    "require_torch",
]


class TorchUnavailableError(MonitorError):
    """PyTorch is needed for this call but is not installed."""


class BaselineError(MonitorError):
    """A baseline file is malformed, or does not fit the model it is used with."""


class AnomalyBlockedError(MonitorError):
    """Raised by ``watch(..., mode="block")`` instead of returning an anomalous output."""

    exit_code = 1

    def __init__(self, message: str, *, events: tuple[AnomalyEvent, ...]) -> None:
        super().__init__(
            message,
            advice="the input does not look like the calibration data (a backdoor trigger or an "
            "out-of-distribution input); inspect it, or use mode='alert' to let it through",
        )
        #: The anomalies found in the blocked batch.
        self.events = events


def require_torch() -> object:
    """Import and return :mod:`torch`, or raise :class:`TorchUnavailableError` with advice."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise TorchUnavailableError(
            "the runtime monitor needs PyTorch, which is not installed",
            advice="install the extra: pip install 'modelseal[torch,monitor]'",
        ) from exc
    return torch

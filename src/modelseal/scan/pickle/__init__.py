"""Static analysis of pickle streams: what would run if the stream were unpickled.

Nothing here unpickles: :mod:`~modelseal.scan.pickle.walker` simulates the opcodes
symbolically, :mod:`~modelseal.scan.pickle.streams` walks every pickle of a file
(legacy PyTorch, joblib, NumPy layouts included) and
:mod:`~modelseal.scan.pickle.globals` holds the dangerous/safe lists.

Public API::

    from modelseal.scan.pickle import analyse_stream, classify
    report = analyse_stream(open("model.pkl", "rb"))
    for ref in report.analysis.references:
        print(ref.module, ref.name, classify(ref.module, ref.name).kind)
"""

from __future__ import annotations

from modelseal.scan.pickle.globals import Classification, classify
from modelseal.scan.pickle.streams import (
    NpyHeader,
    StreamKind,
    StreamReport,
    analyse_stream,
    read_npy_header,
)
from modelseal.scan.pickle.walker import Limits, PickleAnalysis, Reference

__all__ = [
    "Classification",
    "Limits",
    "NpyHeader",
    "PickleAnalysis",
    "Reference",
    "StreamKind",
    "StreamReport",
    "analyse_stream",
    "classify",
    "read_npy_header",
]

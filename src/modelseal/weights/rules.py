"""The weight scanner's rule descriptions, apart from the numeric code.

``modelseal scan`` lists every rule it can emit at start-up; keeping these here
means that listing does not import numpy or the detectors.
"""

from __future__ import annotations

from modelseal.scan.model import RuleInfo, Severity

__all__ = [
    "CONSTANT",
    "DUPLICATE",
    "LOWBIT_PRECISION",
    "LOWBIT_STRUCTURE",
    "NONFINITE",
    "OUTLIER",
    "PAYLOAD",
    "SUBNORMAL_FLOOD",
    "WEIGHT_RULES",
]

PAYLOAD = RuleInfo(
    "MS-WEIGHTS-PAYLOAD",
    "Executable, archive or script hidden in weight bits",
    "The low-order bytes or bits of a tensor's elements spell out a file header "
    "(ELF, PE, Mach-O, zip, gzip, bzip2, xz, 7z, RAR, a shell or Python script): an "
    "EvilModel/StegoNet-style payload smuggled inside the weight values.",
    Severity.CRITICAL,
)

LOWBIT_STRUCTURE = RuleInfo(
    "MS-WEIGHTS-LOWBIT-STRUCTURE",
    "Structured low-order bits",
    "The lowest mantissa bits of trained weights are uniform noise; in this tensor they "
    "hold text (high) or structured data independent of the values (medium), which "
    "formula tensors, repeated values and rescaled fine-tunes do not produce.",
    Severity.HIGH,
)

LOWBIT_PRECISION = RuleInfo(
    "MS-WEIGHTS-LOWBIT-PRECISION",
    "Low bits beyond the tensor's precision",
    "The tensor holds values converted from fp16/bf16 (their low bits are zero), but in "
    "a run of elements only the lowest byte is set, uniformly, while the bits above it "
    "stay zero: bytes written over the low byte (an encrypted or compressed payload). "
    "Training the values further would change the bits above as well.",
    Severity.MEDIUM,
)

NONFINITE = RuleInfo(
    "MS-WEIGHTS-NONFINITE",
    "NaN or infinite weights",
    "A weight tensor holds NaN or infinite values, which no successful training run "
    "produces: the model's outputs are corrupted (a denial of service or sabotage).",
    Severity.HIGH,
)

SUBNORMAL_FLOOD = RuleInfo(
    "MS-WEIGHTS-SUBNORMAL-FLOOD",
    "Flood of subnormal weights",
    "Far more subnormal values than the tensor's own distribution predicts: subnormal "
    "arithmetic is up to 100x slower on CPUs (a denial-of-service vector) or hides data.",
    Severity.MEDIUM,
)

OUTLIER = RuleInfo(
    "MS-WEIGHTS-OUTLIER",
    "Weight far outside the tensor's scale",
    "Elements at least 65,536 times larger than the tensor's 99.9th percentile, such as "
    "an exponent bit flip turning 0.01 into 1e30 (fault injection / sabotage).",
    Severity.HIGH,
)

CONSTANT = RuleInfo(
    "MS-WEIGHTS-CONSTANT",
    "Constant weight matrix",
    "Every element of a matrix has the same non-zero value, which training does not "
    "produce: the layer was overwritten, or it is a constant-initialised buffer (an "
    "averaging kernel), so it is reported for review only.",
    Severity.LOW,
)

DUPLICATE = RuleInfo(
    "MS-WEIGHTS-DUPLICATE",
    "Duplicated tensor",
    "Two tensors under different names hold identical bytes, which independent training "
    "of two layers does not produce (tied embeddings are expected and skipped).",
    Severity.MEDIUM,
)

WEIGHT_RULES: tuple[RuleInfo, ...] = (
    PAYLOAD,
    LOWBIT_STRUCTURE,
    LOWBIT_PRECISION,
    NONFINITE,
    SUBNORMAL_FLOOD,
    OUTLIER,
    CONSTANT,
    DUPLICATE,
)

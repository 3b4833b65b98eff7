"""The feature-space model behind the anomaly score (numpy only; no torch needed).

The score of one input is its squared Mahalanobis distance to the nearest class centre, measured
on the features of the monitored layer(s):

1. centre the calibration features and project them onto the subspace they span (an SVD keeps
   the directions with non-negligible variance, at most ``n - 1`` of them);
2. estimate one within-class covariance, shared by all classes, with Oracle Approximating
   Shrinkage (OAS) so a few dozen samples give a well-conditioned estimate;
3. whiten with its Cholesky factor; the score is ``min_c |W P (x - mu) - m_c|^2``.

Backdoor triggers push the features of a triggered input away from every clean class cluster
(the network learned a separate "trigger" feature), so they score high; so does any input unlike
the calibration data (out-of-distribution). The alert threshold is set from the calibration data
itself: every calibration sample is scored by a model fitted without it (k-fold, leave-one-out
for small sets), and the threshold is the ``1 - target_far`` quantile of those scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelseal.monitor.errors import BaselineError

__all__ = ["FeatureModel", "auroc", "calibrate_threshold", "fit_feature_model", "oas_covariance"]

#: Singular values below this fraction of the largest one do not span the calibration subspace.
_RANK_TOL = 1e-6


@dataclass(frozen=True)
class FeatureModel:
    """A fitted class-conditional Mahalanobis model (float64 arrays)."""

    #: Mean of the calibration features, shape (d,).
    mean: np.ndarray
    #: Projection-and-whitening matrix, shape (d, k): ``z = (x - mean) @ transform``.
    transform: np.ndarray
    #: Class centres in the whitened space, shape (c, k).
    centres: np.ndarray
    #: Class label of each centre (``-1`` for a class-agnostic model), shape (c,).
    classes: np.ndarray
    #: Shrinkage intensity OAS chose (0 = sample covariance, 1 = scaled identity).
    shrinkage: float

    @property
    def rank(self) -> int:
        """Dimension of the calibration subspace the score is measured in."""
        return int(self.transform.shape[1])

    def score(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row of ``features`` (n, d) to its nearest class."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) @ self.transform
        dist = (
            (z * z).sum(axis=1)[:, None]
            - 2.0 * z @ self.centres.T
            + (self.centres * self.centres).sum(axis=1)[None, :]
        )
        result: np.ndarray = np.maximum(dist.min(axis=1), 0.0)
        return result


def oas_covariance(residuals: np.ndarray) -> tuple[np.ndarray, float]:
    """Oracle Approximating Shrinkage estimate of the covariance of centred ``residuals`` (n, p).

    Returns the estimate and the shrinkage intensity (Chen et al., 2010; as in scikit-learn).
    """
    n, p = residuals.shape
    emp = residuals.T @ residuals / n
    mu = float(np.trace(emp)) / p
    if mu <= 0.0:
        return np.eye(p), 1.0
    alpha = float(np.mean(emp * emp))
    num = alpha + mu * mu
    den = (n + 1.0) * (alpha - mu * mu / p)
    shrinkage = 1.0 if den <= 0.0 else min(num / den, 1.0)
    shrunk = (1.0 - shrinkage) * emp
    shrunk.flat[:: p + 1] += shrinkage * mu
    return shrunk, shrinkage


def fit_feature_model(features: np.ndarray, labels: np.ndarray | None = None) -> FeatureModel:
    """Fit the class-conditional Mahalanobis model on calibration ``features`` (n, d).

    ``labels`` (n,) groups the samples (the model's own predicted classes, usually); ``None``
    fits one class-agnostic cluster.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise BaselineError(
            f"need at least 3 calibration samples with vector features, got shape {x.shape}",
            advice="calibrate on more clean inputs (a few dozen per expected class is typical)",
        )
    if not np.isfinite(x).all():
        raise BaselineError(
            "the calibration features contain NaN or infinite values",
            advice="calibrate on clean inputs with a healthy model (check its weights)",
        )
    y = np.full(len(x), -1, dtype=np.int64) if labels is None else np.asarray(labels, np.int64)
    if y.shape != (len(x),):
        raise BaselineError(f"got {len(y)} labels for {len(x)} calibration samples")
    mean = x.mean(axis=0)
    centred = x - mean
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    if sing.size == 0 or sing[0] <= 0.0:
        raise BaselineError(
            "the calibration features do not vary at all",
            advice="calibrate on a varied set of clean inputs, or monitor another layer",
        )
    rank = int((sing > sing[0] * _RANK_TOL).sum())
    basis = vt[:rank].T  # (d, k)
    z = centred @ basis
    classes = np.unique(y)
    index = np.searchsorted(classes, y)
    centres = np.stack([z[index == i].mean(axis=0) for i in range(len(classes))])
    cov, shrinkage = oas_covariance(z - centres[index])
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError as exc:  # pragma: no cover - OAS keeps cov positive definite
        raise BaselineError("the calibration covariance is singular") from exc
    whiten = np.linalg.inv(chol).T  # z @ whiten has identity covariance
    return FeatureModel(
        mean=mean,
        transform=basis @ whiten,
        centres=centres @ whiten,
        classes=classes,
        shrinkage=float(shrinkage),
    )


def calibrate_threshold(
    features: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    target_far: float = 0.01,
    folds: int = 20,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """Threshold with an expected false-alert rate of about ``target_far`` on clean inputs.

    Each calibration sample is scored by a model fitted on the other folds (leave-one-out when
    there are at most ``folds`` samples); the threshold is the ``1 - target_far`` quantile of
    these held-out scores, which are returned too.
    """
    if not 0.0 < target_far < 1.0:
        raise BaselineError(f"target false-alert rate must be in (0, 1), got {target_far}")
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    k = max(2, min(folds, n))
    assignment = np.random.default_rng(seed).permutation(n) % k
    held_out = np.empty(n)
    for fold in range(k):
        test = assignment == fold
        train = ~test
        model = fit_feature_model(x[train], None if labels is None else np.asarray(labels)[train])
        held_out[test] = model.score(x[test])
    threshold = float(np.quantile(held_out, 1.0 - target_far, method="higher"))
    return threshold, held_out


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of scores (positives should score higher); ties count half."""
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    pos = np.asarray(positives, dtype=np.float64).ravel()
    if neg.size == 0 or pos.size == 0:
        raise ValueError("AUROC needs at least one negative and one positive score")
    scores = np.concatenate([neg, pos])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    pos_ranks = ranks[neg.size :].sum()
    return float((pos_ranks - pos.size * (pos.size + 1) / 2.0) / (neg.size * pos.size))

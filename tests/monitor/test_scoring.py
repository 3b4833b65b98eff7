"""The numpy scoring core: OAS shrinkage, the subspace Mahalanobis model, AUROC, thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from modelseal.monitor import BaselineError
from modelseal.monitor.scoring import (
    auroc,
    calibrate_threshold,
    fit_feature_model,
    oas_covariance,
)


def test_oas_matches_scikit_learn() -> None:
    covariance = pytest.importorskip("sklearn.covariance")
    x = np.random.default_rng(0).normal(size=(40, 12)) @ np.diag(np.linspace(0.1, 3, 12))
    ours, shrinkage = oas_covariance(x)
    theirs, their_shrinkage = covariance.oas(x, assume_centered=True)
    assert np.allclose(ours, theirs) and shrinkage == pytest.approx(their_shrinkage)


def test_auroc_matches_scikit_learn_with_ties() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    neg, pos = rng.integers(0, 5, 50).astype(float), rng.integers(2, 8, 30).astype(float)
    expected = metrics.roc_auc_score(np.r_[np.zeros(50), np.ones(30)], np.r_[neg, pos])
    assert auroc(neg, pos) == pytest.approx(expected)
    assert auroc([0, 1], [2, 3]) == 1.0 and auroc([2, 3], [0, 1]) == 0.0


def test_score_is_the_whitened_distance_to_the_nearest_class() -> None:
    rng = np.random.default_rng(2)
    centres = np.array([[0.0] * 6, [10.0] * 6])
    labels = np.repeat([0, 1], 100)
    x = centres[labels] + rng.normal(size=(200, 6))
    model = fit_feature_model(x, labels)
    assert model.rank == 6 and list(model.classes) == [0, 1]
    clean = model.score(centres[labels] + rng.normal(size=(200, 6)))
    assert 3.0 < np.median(clean) < 9.0  # ~ chi-square with 6 degrees of freedom
    far = model.score(np.full((1, 6), 5.0))  # between the classes: far from both
    assert far[0] > np.quantile(clean, 0.999)
    # Directions the calibration data never varied in are projected away.
    flat = np.c_[x, np.zeros(200)]
    assert fit_feature_model(flat, labels).rank == 6


def test_threshold_has_the_target_false_alert_rate_on_fresh_clean_data() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 8))
    threshold, held_out = calibrate_threshold(x, target_far=0.05)
    assert held_out.shape == (300,)
    fresh = fit_feature_model(x).score(rng.normal(size=(20000, 8)))
    assert 0.01 <= (fresh > threshold).mean() <= 0.10


def test_degenerate_calibration_data_is_a_clear_error() -> None:
    with pytest.raises(BaselineError, match="do not vary"):
        fit_feature_model(np.ones((10, 4)))
    with pytest.raises(BaselineError, match="NaN"):
        fit_feature_model(np.full((10, 4), np.nan))
    with pytest.raises(BaselineError, match="target false-alert rate"):
        calibrate_threshold(np.random.default_rng(0).normal(size=(10, 3)), target_far=0.0)

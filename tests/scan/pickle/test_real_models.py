"""Real pickles written by the libraries themselves (never hand-written, never loaded).

scikit-learn, LightGBM, XGBoost, OmegaConf and PyTorch Lightning objects are built
and trained on a few rows here, then saved with joblib, pickle (protocols 0, 2, 5)
and ``torch.save``/``Trainer.save_checkpoint`` exactly as users save them. The scan
must find nothing in any of them, by default and under ``--strict``: a scanner that
flags every scikit-learn model gets switched off.
"""

from __future__ import annotations

import collections
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelseal.scan.engine import scan
from modelseal.scan.interface import ScanOptions
from modelseal.scan.model import ScanReport, Verdict

pytestmark = pytest.mark.filterwarnings("ignore")

_ROWS = np.random.default_rng(0).normal(size=(120, 5))
_CLASS = (_ROWS[:, 0] > 0).astype(int)
_TARGET = _ROWS[:, 1] * 2.0


def _sklearn_models() -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler
    from sklearn.svm import SVC

    x, y, t = _ROWS, _CLASS, _TARGET
    mixed = np.c_[x[:, :2], (x[:, 2] > 0).astype(int)]
    columns = ColumnTransformer(
        [("num", StandardScaler(), [0, 1]), ("cat", OneHotEncoder(handle_unknown="ignore"), [2])]
    )
    docs = ["apple banana", "banana cherry", "xray yak", "yak zebra"]
    return {
        "sk_pipeline": make_pipeline(StandardScaler(), PCA(3), LogisticRegression()).fit(x, y),
        "sk_columns": make_pipeline(columns, LogisticRegression()).fit(mixed, y),
        "sk_forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        "sk_gboost": GradientBoostingClassifier(n_estimators=3).fit(x, y),
        "sk_hist": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "sk_iforest": IsolationForest(n_estimators=3, random_state=0).fit(x),
        "sk_svc": SVC(probability=True, random_state=0).fit(x, y),
        "sk_knn": KNeighborsClassifier().fit(x, y),
        "sk_mlp": MLPClassifier(max_iter=5, random_state=0).fit(x, y),
        "sk_grid": GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=2).fit(x, t),
        "sk_sgd": SGDClassifier(random_state=0).fit(x, y),
        "sk_poly": make_pipeline(SimpleImputer(), PolynomialFeatures(2), Ridge()).fit(x, t),
        "sk_text": make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(docs, [0, 0, 1, 1]),
    }


def _lightgbm_models() -> dict[str, Any]:
    lgb = pytest.importorskip("lightgbm")
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(_ROWS, _TARGET), 3)
    classifier = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(_ROWS, _CLASS)
    return {"lgbm_booster": booster, "lgbm_classifier": classifier}


def _xgboost_models() -> dict[str, Any]:
    xgb = pytest.importorskip("xgboost")
    booster = xgb.train({}, xgb.DMatrix(_ROWS, _TARGET), num_boost_round=3)
    classifier = xgb.XGBClassifier(n_estimators=3).fit(_ROWS, _CLASS)
    return {"xgb_booster": booster, "xgb_classifier": classifier}


def _plain_objects() -> dict[str, Any]:
    omegaconf = pytest.importorskip("omegaconf")
    config = omegaconf.OmegaConf.create(
        {"model": {"lr": 0.1, "layers": [1, 2], "name": "m", "extra": None}, "seed": 1}
    )
    containers = {
        "ordered": collections.OrderedDict(a=1),
        "default": collections.defaultdict(list, {"x": [1]}),
        "counter": collections.Counter("abc"),
        "deque": collections.deque([1, 2]),
        "scalars": [np.float64(1.5), np.int64(3), np.bool_(True), np.float32(2)],
        "dtype": np.float64,
        "generator": np.random.default_rng(1),
        "masked": np.ma.masked_array([1.0, 2.0], mask=[False, True]),
    }
    return {"omegaconf": config, "containers": containers}


_BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "sklearn": _sklearn_models,
    "lightgbm": _lightgbm_models,
    "xgboost": _xgboost_models,
    "objects": _plain_objects,
}


def _save_all(folder: Path, models: dict[str, Any]) -> list[Path]:
    import joblib

    paths = []
    for name, model in models.items():
        joblib.dump(model, folder / f"{name}.joblib")
        joblib.dump(model, folder / f"{name}.joblib.z", compress=("zlib", 3))
        for protocol in (0, 2, 5):
            (folder / f"{name}.p{protocol}.pkl").write_bytes(pickle.dumps(model, protocol))
        paths.extend(sorted(folder.glob(f"{name}.*")))
    return paths


def _lightning_checkpoints(folder: Path) -> list[Path]:
    pl = pytest.importorskip("pytorch_lightning")
    omegaconf = pytest.importorskip("omegaconf")
    import torch

    class Regressor(pl.LightningModule):
        def __init__(self, hparams: Any) -> None:
            super().__init__()
            self.save_hyperparameters(hparams)
            self.layer = torch.nn.Linear(5, 1)

        def training_step(self, batch: Any, index: int) -> Any:
            x, t = batch
            loss = torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), t)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            return {
                "optimizer": optimizer,
                "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1),
            }

    data = torch.utils.data.TensorDataset(
        torch.tensor(_ROWS, dtype=torch.float32), torch.tensor(_TARGET, dtype=torch.float32)
    )
    paths = []
    for name, hparams in (
        ("omegaconf", omegaconf.OmegaConf.create({"lr": 0.1, "layers": [4, 2], "act": None})),
        ("dict", {"lr": 0.1, "layers": [4, 2], "name": "m"}),
    ):
        trainer = pl.Trainer(
            max_epochs=1,
            default_root_dir=str(folder),
            logger=False,
            callbacks=[
                pl.callbacks.ModelCheckpoint(dirpath=str(folder / "ckpt"), monitor="train_loss"),
                pl.callbacks.EarlyStopping("train_loss"),
            ],
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(Regressor(hparams), torch.utils.data.DataLoader(data, batch_size=60))
        path = folder / f"lightning-{name}.ckpt"
        trainer.save_checkpoint(path)
        paths.append(path)
    paths.extend(sorted((folder / "ckpt").glob("*.ckpt")))
    return paths


@pytest.fixture(scope="module")
def real_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    files: dict[str, list[Path]] = {}
    for family, build in _BUILDERS.items():
        folder = tmp_path_factory.mktemp(family)
        files[family] = _save_all(folder, build())
    files["lightning"] = _lightning_checkpoints(tmp_path_factory.mktemp("lightning"))
    return files


def _findings(report: ScanReport) -> list[tuple[str, str, str]]:
    return [(r.path, f.rule, f.message) for r in report.results for f in r.findings]


@pytest.mark.parametrize("family", [*_BUILDERS, "lightning"])
@pytest.mark.parametrize("strict", [False, True])
def test_real_models_scan_clean_without_findings(
    real_files: dict[str, list[Path]], family: str, strict: bool
) -> None:
    paths = real_files[family]
    assert paths
    report = scan(paths, options=ScanOptions(strict=strict))
    assert _findings(report) == []
    assert {r.verdict for r in report.results} == {Verdict.CLEAN}
    formats = {r.format for r in report.results}
    assert formats & {"pickle", "joblib", "pytorch-zip"}, formats

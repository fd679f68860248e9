"""The training pipeline's model as the steps after training receive it."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pandas as pd

from pipeline_code.training import preprocess as training_preprocess
from pipeline_code.training import train as training_train
from pipeline_code.training.pipeline import HYPERPARAMETERS


def package_model(model_dir: Path, archive_dir: Path) -> Path:
    """``model.tar.gz`` of the model folder's files at its top level, as a training job uploads it."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive = archive_dir / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def hyperparameter_arguments(**values: int) -> list[str]:
    """train.py's hyperparameter arguments as the pipeline passes them: its parameters' defaults, except
    `values` (by parameter name, e.g. ``NEstimators=50``)."""
    unknown = set(values) - set(HYPERPARAMETERS)
    assert not unknown, f"not hyperparameters of the training pipeline: {unknown}"
    return [part for name, (argument, default) in HYPERPARAMETERS.items() for part in (f"--{argument}", str(values.get(name, default)))]


def train_model_artifact(data: pd.DataFrame, work: Path, *, n_estimators: int | None = None) -> Path:
    """The training pipeline's ``model.tar.gz``, made from `data` by its own preprocess and train steps (with the
    pipeline's default hyperparameters unless `n_estimators` is given)."""
    (work / "input").mkdir(parents=True, exist_ok=True)
    data.to_csv(work / "input" / "data.csv", index=False)
    if training_preprocess.main(["--input-dir", str(work / "input"), "--output-dir", str(work / "processed")]) != 0:
        raise RuntimeError("the training pipeline's preprocess step failed")
    hyperparameters = hyperparameter_arguments(**({"NEstimators": n_estimators} if n_estimators is not None else {}))
    arguments = ["--train-dir", str(work / "processed" / "train"), "--validation-dir", str(work / "processed" / "validation"), "--model-dir", str(work / "model"), *hyperparameters]
    if training_train.main(arguments) != 0:
        raise RuntimeError("the training pipeline's train step failed")
    return package_model(work / "model", work / "artifact")

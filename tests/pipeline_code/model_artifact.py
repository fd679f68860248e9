"""The training pipeline's model as the steps after training receive it."""

from __future__ import annotations

import tarfile
from pathlib import Path

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

"""Batch inference: score every preprocessed CSV with the training pipeline's model.

Runs as a Processing Job on the custom inference image (``python3 predict.py``); every container path is
an argument with the SageMaker default, so the same script runs locally and in ``docker run``. The model
arrives as the training job's ``model.tar.gz`` (``model.joblib`` and ``features.json``, as the training
pipeline's train step writes them). The input is distributed ShardedByS3Key, so with several instances
each one scores some of the files: every input file becomes ``<input stem>.predictions.csv``, and the
instances never overwrite each other's output.

Each predictions file has one row per input row: ``row`` (its position in the input file), ``prediction``
(the predicted label), ``positive_probability`` (the probability of the model's second class, the
positive one for a 0/1 label) and ``is_positive``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import joblib
import pandas as pd

MODEL_ARCHIVE = "model.tar.gz"
MODEL_FILE = "model.joblib"
FEATURES_FILE = "features.json"


class BadInput(ValueError):
    """The model or an input file cannot be used; the message names the file and says why."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    parser.add_argument("--model-dir", default="/opt/ml/processing/input/model")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    # SageMaker writes the job's hosts here; locally it is absent, which means one instance.
    parser.add_argument("--resource-config", default="/opt/ml/config/resourceconfig.json")
    return parser.parse_args(argv)


def instance_count(resource_config: Path) -> int:
    if not resource_config.is_file():
        return 1
    return len(json.loads(resource_config.read_text()).get("hosts", [])) or 1


def load_model(model_dir: Path, unpack_dir: Path):
    """The model and its feature names, from model.tar.gz (or from a folder that already holds them)."""
    archive = model_dir / MODEL_ARCHIVE
    if archive.is_file():
        # Into a temporary folder, not beside the archive: the job's input folders need not be writable.
        with tarfile.open(archive) as tar:
            # The "data" filter refuses unsafe paths; older Pythons lack it.
            tar.extractall(unpack_dir, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        model_dir = unpack_dir
    missing = [name for name in (MODEL_FILE, FEATURES_FILE) if not (model_dir / name).is_file()]
    if missing:
        source = archive if archive.is_file() else model_dir
        raise BadInput(f"no {' or '.join(missing)} in {source}; expected the training pipeline's {MODEL_ARCHIVE}")
    return joblib.load(model_dir / MODEL_FILE), json.loads((model_dir / FEATURES_FILE).read_text())


def read_features(path: Path, feature_names: list[str]) -> pd.DataFrame:
    try:
        data = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise BadInput(f"{path.name} is empty") from None
    if data.empty:
        raise BadInput(f"{path.name} has a header but no rows")
    missing = [name for name in feature_names if name not in data.columns]
    if missing:
        raise BadInput(f"{path.name} lacks feature column(s) the model needs: {', '.join(missing)}")
    # The model's column order, whatever the file's.
    return data[feature_names]


def predict(model, features: pd.DataFrame) -> pd.DataFrame:
    positive_class = model.classes_[1]
    labels = model.predict(features)
    return pd.DataFrame(
        {
            "row": range(len(features)),
            "prediction": labels,
            "positive_probability": model.predict_proba(features)[:, 1],
            "is_positive": (labels == positive_class).astype(int),
        }
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    input_dir, output_dir = Path(args.input_dir), Path(args.output_dir)
    files = sorted(path for path in input_dir.rglob("*.csv") if path.is_file())
    if not files and instance_count(Path(args.resource_config)) > 1:
        # More instances than files: ShardedByS3Key leaves some instances without any.
        print(f"No .csv files under {input_dir} on this instance: the other instances have the input's files")
        return 0
    try:
        if not files:
            raise BadInput(f"no .csv files under {input_dir}")
        with tempfile.TemporaryDirectory() as unpack_dir:
            model, feature_names = load_model(Path(args.model_dir), Path(unpack_dir))
        scored = {path: predict(model, read_features(path, feature_names)) for path in files}
    except BadInput as error:
        print(f"Inference failed: {error}", file=sys.stderr)
        return 1
    output_dir.mkdir(parents=True, exist_ok=True)
    for path, predictions in scored.items():
        predictions.to_csv(output_dir / f"{path.stem}.predictions.csv", index=False)
    rows = sum(len(predictions) for predictions in scored.values())
    print(f"Scored {rows} rows from {len(scored)} file(s) with {len(feature_names)} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())

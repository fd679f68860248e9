"""Train step: a random forest on the preprocessed training split.

Runs as the entry point of the SageMaker scikit-learn training container (script mode): the channels and
the model directory come from SM_* environment variables, with arguments to override them locally.
``model_fn`` lets the same container serve the model. With MLflow's ``MLFLOW_TRACKING_URI`` set (the
pipeline sets it to the environment's tracking server, if it has one), the hyperparameters and the
validation AUC are logged to MLflow too, when the image provides ``mlflow`` (and ``sagemaker-mlflow`` for a
tracking server ARN); training never fails for want of it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

MODEL_FILE = "model.joblib"
# The serving container's SAGEMAKER_SUBMIT_DIRECTORY: the model artifact carries this script, so the
# endpoint's role needs to read the artifact and nothing else.
CODE_DIR = "code"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-dir", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument("--validation-dir", default=os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    # Hyperparameters arrive as command-line arguments in script mode.
    parser.add_argument("--n-estimators", type=int, default=200)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--random-state", type=int, default=42)
    return parser.parse_args(argv)


def read_split(directory: Path) -> tuple[pd.DataFrame, pd.Series]:
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv files in {directory}")
    data = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
    # Preprocess puts the label first.
    return data.iloc[:, 1:], data.iloc[:, 0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    features, labels = read_split(Path(args.train_dir))
    model = RandomForestClassifier(
        n_estimators=args.n_estimators, max_depth=args.max_depth, random_state=args.random_state, n_jobs=-1
    )
    model.fit(features, labels)

    validation_features, validation_labels = read_split(Path(args.validation_dir))
    auc = roc_auc_score(validation_labels, model.predict_proba(validation_features)[:, 1])
    # In the training job's log, next to the test AUC that the Evaluate step reports.
    print(f"validation:auc={auc:.6f}")
    log_to_mlflow({"n_estimators": args.n_estimators, "max_depth": args.max_depth, "random_state": args.random_state}, {"validation_auc": auc})

    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / MODEL_FILE)
    (model_dir / "features.json").write_text(json.dumps(list(features.columns)))
    (model_dir / CODE_DIR).mkdir(exist_ok=True)
    shutil.copy(__file__, model_dir / CODE_DIR / Path(__file__).name)
    return 0


def log_to_mlflow(params: dict, metrics: dict) -> bool:
    """Log a run to the MLflow tracking server in ``MLFLOW_TRACKING_URI``, if there is one; True if logged."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return False
    try:
        import mlflow
    except ImportError:
        print("MLFLOW_TRACKING_URI is set, but this image has no mlflow package: the run is not logged to MLflow", file=sys.stderr)
        return False
    # MLflow reads the tracking URI from its environment variable; the experiment is created if it is new.
    if os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
    with mlflow.start_run(run_name=os.environ.get("TRAINING_JOB_NAME")):
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
    return True


def model_fn(model_dir: str):
    """Used by the scikit-learn serving container to load the model."""
    return joblib.load(Path(model_dir) / MODEL_FILE)


if __name__ == "__main__":
    sys.exit(main())

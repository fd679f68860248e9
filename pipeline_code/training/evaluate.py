"""Evaluate step: score the trained model on the held-out test split and write ``evaluation.json``.

The report follows SageMaker's model-quality metrics layout (``binary_classification_metrics``), so the
Model Registry shows it, and the pipeline's condition reads ``binary_classification_metrics.auc.value``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

TOP_FEATURES = 10


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    return parser.parse_args(argv)


def load_model(model_dir: Path):
    # A training job hands its model over as model.tar.gz; unpack it next to itself.
    archive = model_dir / "model.tar.gz"
    if archive.exists():
        with tarfile.open(archive) as tar:
            # The "data" filter refuses unsafe paths; older Pythons in the container lack it.
            tar.extractall(model_dir, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return joblib.load(model_dir / "model.joblib"), json.loads((model_dir / "features.json").read_text())


def evaluate(model, feature_names: list[str], test: pd.DataFrame) -> dict:
    labels, features = test.iloc[:, 0], test.iloc[:, 1:]
    probabilities = model.predict_proba(features)[:, 1]
    importances = sorted(zip(feature_names, model.feature_importances_), key=lambda item: item[1], reverse=True)
    return {
        "binary_classification_metrics": {
            "auc": {"value": float(roc_auc_score(labels, probabilities)), "standard_deviation": "NaN"},
            "accuracy": {"value": float(accuracy_score(labels, model.predict(features))), "standard_deviation": "NaN"},
        },
        "feature_importances": [
            {"feature": name, "importance": float(value)} for name, value in importances[:TOP_FEATURES]
        ],
        "test_rows": int(len(test)),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    model, feature_names = load_model(Path(args.model_dir))
    test = pd.concat([pd.read_csv(p) for p in sorted(Path(args.test_dir).glob("*.csv"))], ignore_index=True)
    report = evaluate(model, feature_names, test)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "evaluation.json").write_text(json.dumps(report, indent=2))
    metrics = report["binary_classification_metrics"]
    print(f"test:auc={metrics['auc']['value']:.6f} test:accuracy={metrics['accuracy']['value']:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

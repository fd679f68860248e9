"""Evaluate step: score the trained model on the held-out test split and write ``evaluation.json``.

The report follows SageMaker's model-quality metrics layout (``binary_classification_metrics``), so the
Model Registry shows it, and the pipeline's condition reads ``binary_classification_metrics.auc.value``.
Inside a pipeline run, the test metrics are also logged to the run in SageMaker Experiments, where runs
are compared; run anywhere else (tests, a laptop), the script touches nothing but its files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from pathlib import Path

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

TOP_FEATURES = 10
# SageMaker writes this file into every processing job's container; nowhere else has it.
PROCESSING_JOB_CONFIG = "/opt/ml/config/processingjobconfig.json"
# The metrics logged to the run, as they appear in Studio's experiment views.
RUN_METRICS = ("auc", "accuracy")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    parser.add_argument("--job-config", default=PROCESSING_JOB_CONFIG, help="the processing job's config file, present only in SageMaker")
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


def trial_component_of(job_config: Path) -> str | None:
    """The run (trial component) SageMaker keeps for this processing job, or None outside a processing job.

    A pipeline with experiment tracking puts each step's job in the execution's trial, as the trial
    component SageMaker creates for the job and names ``<job name>-aws-processing-job``.
    """
    if not job_config.is_file():
        return None
    config = json.loads(job_config.read_text())
    job_name = config.get("ProcessingJobName") or config["ProcessingJobArn"].rsplit("/", 1)[-1]
    return f"{job_name}-aws-processing-job"


def log_to_run(report: dict, trial_component: str) -> bool:
    """Log the test metrics to `trial_component`; say so and go on if that fails, since the report (and
    the registered model's metrics) still carry them."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    metrics = report["binary_classification_metrics"]
    data = [{"MetricName": f"test:{name}", "Timestamp": time.time(), "Step": 0, "Value": metrics[name]["value"]} for name in RUN_METRICS]
    try:
        errors = boto3.client("sagemaker-metrics").batch_put_metrics(TrialComponentName=trial_component, MetricData=data)["Errors"]
    except (BotoCoreError, ClientError) as error:
        errors = [str(error)]
    if errors:
        print(f"test metrics not logged to run {trial_component}: {errors}; evaluation.json has them", file=sys.stderr)
        return False
    print(f"test metrics logged to run {trial_component}")
    return True


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
    trial_component = trial_component_of(Path(args.job_config))
    if trial_component:
        log_to_run(report, trial_component)
    return 0


if __name__ == "__main__":
    sys.exit(main())

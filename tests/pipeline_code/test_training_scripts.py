"""The training pipeline's step scripts, run end to end on real data with the container paths as arguments.

Every pipeline_code/ folder built from the same scripts (preprocess, train, evaluate) runs these tests;
a folder with other scripts needs its own test module (test_every_pipeline_has_its_scripts_tested.py).
A folder whose scripts are links to another's (churn's are training's) runs the very files that folder's
tests run, so the tests run once for each set of files.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from pipeline_code import render
from tests.pipeline_code.mlflow_server import FakeMlflowTrackingServer, mlflow_tracking_server
from pipeline_code.training.pipeline import HYPERPARAMETERS
from tests.pipeline_code.model_artifact import hyperparameter_arguments, package_model

# pandas and scikit-learn are imported by the tests that use them: every xdist worker imports this module to
# collect it, and only the one that runs these tests needs them (about 2 s of imports).

SCRIPTS = ("evaluate.py", "preprocess.py", "train.py")
PIPELINES = [name for name in render.pipeline_names() if tuple(p.name for p in render.step_scripts(name)) == SCRIPTS]


def one_pipeline_per_set_of_files(pipelines: list[str]) -> list[str]:
    """A pipeline for each set of script files, links resolved: the one whose folder holds the files (not links)."""
    chosen: dict[tuple[Path, ...], str] = {}
    for name in pipelines:
        scripts = render.step_scripts(name)
        files = tuple(script.resolve() for script in scripts)
        if files not in chosen or not any(script.is_symlink() for script in scripts):
            chosen[files] = name
    return sorted(chosen.values())


DISTINCT_SCRIPTS = one_pipeline_per_set_of_files(PIPELINES)


@pytest.fixture(scope="module", params=DISTINCT_SCRIPTS)
def scripts(request) -> SimpleNamespace:
    """One pipeline's step scripts, imported as modules, and the folder they live in."""
    modules = {p.removesuffix(".py"): importlib.import_module(f"pipeline_code.{request.param}.{p.removesuffix('.py')}") for p in SCRIPTS}
    return SimpleNamespace(folder=render.PACKAGE_DIR / request.param, **modules)


@pytest.fixture(scope="module")
def breast_cancer_csv(tmp_path_factory) -> Path:
    """scikit-learn's bundled breast-cancer data (569 rows, 30 features), as a batch job would upload it."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    directory = tmp_path_factory.mktemp("input")
    data.to_csv(directory / "breast_cancer.csv", index=False)
    return directory


@pytest.fixture(scope="module")
def pipeline_run(scripts, breast_cancer_csv, tmp_path_factory) -> dict[str, Path]:
    """Preprocess -> train -> evaluate, each step reading what the previous one wrote, as in the pipeline."""
    work = tmp_path_factory.mktemp("run")
    processed, model, evaluation = work / "processed", work / "model", work / "evaluation"
    assert scripts.preprocess.main(["--input-dir", str(breast_cancer_csv), "--output-dir", str(processed)]) == 0
    assert scripts.train.main(
        ["--train-dir", str(processed / "train"), "--validation-dir", str(processed / "validation"), "--model-dir", str(model), *hyperparameter_arguments(NEstimators=50)]
    ) == 0
    # The evaluation step receives the training job's output as model.tar.gz.
    packaged = package_model(model, work / "packaged-model").parent
    assert scripts.evaluate.main(["--model-dir", str(packaged), "--test-dir", str(processed / "test"), "--output-dir", str(evaluation)]) == 0
    return {"processed": processed, "model": model, "evaluation": evaluation}


def test_a_folder_of_links_is_tested_through_the_folder_of_its_files_and_a_folder_of_its_own_files_on_its_own(tmp_path, monkeypatch):
    for folder in ("original", "linked", "copied"):
        (tmp_path / folder).mkdir()
    for name in SCRIPTS:
        (tmp_path / "original" / name).write_text(f"# {name}\n")
        (tmp_path / "linked" / name).symlink_to(tmp_path / "original" / name)
    monkeypatch.setattr(render, "step_scripts", lambda name: sorted((tmp_path / name).glob("*.py")))

    linked = one_pipeline_per_set_of_files(["linked", "original"])
    for name in SCRIPTS:
        (tmp_path / "copied" / name).write_text((tmp_path / "original" / name).read_text())

    assert (linked, one_pipeline_per_set_of_files(["copied", "linked", "original"])) == (["original"], ["copied", "original"])


def test_preprocess_splits_into_train_validation_and_test_with_the_label_first(pipeline_run):
    import pandas as pd

    splits = {name: pd.read_csv(pipeline_run["processed"] / name / f"{name}.csv") for name in ("train", "validation", "test")}

    assert sum(len(frame) for frame in splits.values()) == 569
    assert len(splits["train"]) == pytest.approx(0.7 * 569, abs=1)
    assert all(frame.columns[0] == "target" for frame in splits.values())


def test_preprocess_records_the_files_it_read(pipeline_run, breast_cancer_csv):
    manifest = json.loads((pipeline_run["processed"] / "manifest" / "manifest.json").read_text())

    (entry,) = manifest["objects"]
    assert entry["file"] == "breast_cancer.csv"
    assert entry["bytes"] == (breast_cancer_csv / "breast_cancer.csv").stat().st_size
    assert len(entry["sha256"]) == 64


def test_preprocess_records_the_s3_object_versions_it_read(scripts, breast_cancer_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
        version = s3.put_object(Bucket="data", Key="training/breast_cancer.csv", Body=(breast_cancer_csv / "breast_cancer.csv").read_bytes())["VersionId"]

        scripts.preprocess.main(["--input-dir", str(breast_cancer_csv), "--output-dir", str(tmp_path), "--input-uri", "s3://data/training/"])

    (entry,) = json.loads((tmp_path / "manifest" / "manifest.json").read_text())["objects"]
    assert entry["s3_uri"] == "s3://data/training/breast_cancer.csv"
    assert entry["version_id"] == version


@pytest.mark.parametrize("left_out", [argument for argument, _ in HYPERPARAMETERS.values()])
def test_train_requires_every_hyperparameter_so_no_default_hides_the_pipelines(scripts, left_out, capsys):
    arguments = hyperparameter_arguments()
    position = arguments.index(f"--{left_out}")
    del arguments[position:position + 2]

    with pytest.raises(SystemExit):
        scripts.train.parse_args(["--train-dir", "t", "--validation-dir", "v", "--model-dir", "m", *arguments])
    assert f"--{left_out}" in capsys.readouterr().err


def test_train_reads_the_hyperparameters_the_pipeline_passes(scripts):
    arguments = scripts.train.parse_args(["--train-dir", "t", "--validation-dir", "v", "--model-dir", "m", *hyperparameter_arguments(MaxDepth=3)])

    assert (arguments.n_estimators, arguments.max_depth, arguments.random_state) == (
        HYPERPARAMETERS["NEstimators"][1], 3, HYPERPARAMETERS["RandomState"][1]
    )


def test_train_writes_a_model_the_serving_container_can_load(scripts, pipeline_run):
    model = scripts.train.model_fn(str(pipeline_run["model"]))
    features = json.loads((pipeline_run["model"] / "features.json").read_text())

    assert len(features) == 30
    assert model.n_features_in_ == 30


def test_evaluation_report_has_auc_accuracy_and_top_features(scripts, pipeline_run):
    report = json.loads((pipeline_run["evaluation"] / "evaluation.json").read_text())
    metrics = report["binary_classification_metrics"]

    assert metrics["auc"]["value"] >= 0.9
    assert 0.8 <= metrics["accuracy"]["value"] <= 1.0
    assert len(report["feature_importances"]) == scripts.evaluate.TOP_FEATURES
    importances = [f["importance"] for f in report["feature_importances"]]
    assert importances == sorted(importances, reverse=True)


def _run_preprocess_script(scripts: SimpleNamespace, input_dir: Path, output_dir: Path) -> subprocess.CompletedProcess:
    """As the container runs it: `python3 preprocess.py ...`, judged by its exit code and stderr."""
    return subprocess.run(
        [sys.executable, str(scripts.folder / "preprocess.py"), "--input-dir", str(input_dir), "--output-dir", str(output_dir)],
        capture_output=True,
        text=True,
        check=False,
    )


def _preprocess_fails(scripts: SimpleNamespace, input_dir: Path, output_dir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What the step says when it fails: its main() returns the exit code the command ends with."""
    assert scripts.preprocess.main(["--input-dir", str(input_dir), "--output-dir", str(output_dir)]) != 0
    return capsys.readouterr().err


def test_empty_file_fails_the_step_with_a_clear_message(scripts, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text("")

    result = _run_preprocess_script(scripts, tmp_path / "in", tmp_path / "out")

    assert result.returncode != 0
    assert "Preprocess failed: data.csv is empty" in result.stderr


def test_header_without_rows_fails_the_step(scripts, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text("a,b,target\n")

    error = _preprocess_fails(scripts, tmp_path / "in", tmp_path / "out", capsys)

    assert "has a header but no rows" in error


def test_missing_label_column_fails_the_step_naming_the_columns(scripts, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text("a,b\n1,4\n2,3\n3,2\n4,1\n")

    error = _preprocess_fails(scripts, tmp_path / "in", tmp_path / "out", capsys)

    assert "label column 'target' is missing; columns are: a, b" in error


def test_single_class_label_fails_the_step(scripts, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text("a,target\n" + "".join(f"{a},1\n" for a in range(10)))

    error = _preprocess_fails(scripts, tmp_path / "in", tmp_path / "out", capsys)

    assert "must have exactly 2 classes, found 1" in error
    assert not (tmp_path / "out" / "train").exists()


def test_model_carries_the_inference_code_the_serving_container_runs(pipeline_run):
    spec = importlib.util.spec_from_file_location("served", pipeline_run["model"] / "code" / "train.py")
    served = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(served)

    assert served.model_fn(str(pipeline_run["model"])).n_features_in_ == 30


def _evaluate(scripts, pipeline_run, output: Path, *job_config: str) -> int:
    return scripts.evaluate.main(
        ["--model-dir", str(pipeline_run["model"]), "--test-dir", str(pipeline_run["processed"] / "test"), "--output-dir", str(output), *job_config]
    )


def _processing_job_config(directory: Path, job_name: str) -> Path:
    """The file SageMaker puts into a processing job's container, with the fields the script reads."""
    path = directory / "processingjobconfig.json"
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:processing-job/{job_name.lower()}"
    path.write_text(json.dumps({"ProcessingJobName": job_name, "ProcessingJobArn": arn}))
    return path


def test_evaluation_outside_a_processing_job_calls_no_aws(scripts, pipeline_run, tmp_path):
    from tests.conftest import aws_unreachable

    attempts: list[str] = []
    with aws_unreachable(attempts):
        assert _evaluate(scripts, pipeline_run, tmp_path, "--job-config", str(tmp_path / "absent.json")) == 0

    assert attempts == []
    assert (tmp_path / "evaluation.json").exists()


def test_evaluation_in_a_pipeline_job_logs_the_test_metrics_to_its_run(scripts, pipeline_run, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    job = "pipelines-0a1b2c3d4e5f-Evaluate-x1y2z3"
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
        # What SageMaker creates for a pipeline's job when the pipeline tracks its runs.
        sagemaker.create_trial_component(TrialComponentName=f"{job}-aws-processing-job")

        assert _evaluate(scripts, pipeline_run, tmp_path, "--job-config", str(_processing_job_config(tmp_path, job))) == 0

        logged = sagemaker.describe_trial_component(TrialComponentName=f"{job}-aws-processing-job")["Metrics"]
    report = json.loads((tmp_path / "evaluation.json").read_text())["binary_classification_metrics"]
    assert {m["MetricName"]: m["Last"] for m in logged} == {"test:auc": report["auc"]["value"], "test:accuracy": report["accuracy"]["value"]}


def test_evaluation_whose_run_cannot_be_found_still_reports(scripts, pipeline_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        assert _evaluate(scripts, pipeline_run, tmp_path, "--job-config", str(_processing_job_config(tmp_path, "untracked-job"))) == 0

    assert "test metrics not logged to run untracked-job-aws-processing-job" in capsys.readouterr().err
    assert (tmp_path / "evaluation.json").exists()


# The two kinds of SageMaker managed MLflow the environment may have: clients address both alike.
MLFLOW_ARNS = {
    "serverless": "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-app/app-0a1b2c3d4e5f",
    "tracking-server": "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/mlops-prod-mlflow",
}


def _train(scripts, pipeline_run, model_dir: Path) -> int:
    processed = pipeline_run["processed"]
    return scripts.train.main(
        ["--train-dir", str(processed / "train"), "--validation-dir", str(processed / "validation"), "--model-dir", str(model_dir), *hyperparameter_arguments(NEstimators=20)]
    )


@pytest.fixture(params=MLFLOW_ARNS.values(), ids=MLFLOW_ARNS.keys())
def tracking_server(monkeypatch, request) -> Iterator[FakeMlflowTrackingServer]:
    """The environment's MLflow App or tracking server, as the pipeline hands it to the training job."""
    with mlflow_tracking_server(request.param) as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", request.param)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mlops-prod-training")
        monkeypatch.setenv("TRAINING_JOB_NAME", "pipelines-0a1b2c3d-Train-x1y2z3")
        # The sagemaker-mlflow plugin's own switch from the region's MLflow endpoint to another one.
        monkeypatch.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", server.url)
        yield server


def test_training_logs_its_hyperparameters_and_validation_auc_to_a_new_experiment(scripts, pipeline_run, tmp_path, tracking_server, capsys):
    assert _train(scripts, pipeline_run, tmp_path) == 0

    experiment = tracking_server.experiment_named("mlops-prod-training")
    (run,) = tracking_server.runs.values()
    assert run["info"]["experiment_id"] == experiment["experiment_id"]
    assert (run["info"]["run_name"], run["info"]["status"]) == ("pipelines-0a1b2c3d-Train-x1y2z3", "FINISHED")
    assert run["info"]["start_time"] <= run["info"]["end_time"]
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"n_estimators": "20", "max_depth": "8", "random_state": "42"}
    (metric,) = run["data"]["metrics"]
    printed_auc = float(capsys.readouterr().out.split("validation:auc=")[1].split()[0])
    assert (metric["key"], metric["value"]) == ("validation_auc", pytest.approx(printed_auc, abs=1e-6))
    assert tracking_server.refused == []


def test_training_logs_to_the_experiment_that_exists_already(scripts, pipeline_run, tmp_path, tracking_server):
    tracking_server.experiments["7"] = {"experiment_id": "7", "name": "mlops-prod-training", "lifecycle_stage": "active"}

    assert _train(scripts, pipeline_run, tmp_path) == 0

    (run,) = tracking_server.runs.values()
    assert run["info"]["experiment_id"] == "7"
    assert len(tracking_server.experiments) == 2
    assert "POST experiments/create" not in tracking_server.requests


def test_training_signs_every_request_to_the_tracking_server_for_sagemaker_mlflow(scripts, pipeline_run, tmp_path, tracking_server):
    assert _train(scripts, pipeline_run, tmp_path) == 0

    assert tracking_server.requests == [
        "GET experiments/get-by-name",
        "POST experiments/create",
        "POST runs/create",
        "POST runs/log-batch",
        "POST runs/update",
    ]
    assert tracking_server.refused == []


def test_training_whose_credentials_the_tracking_server_refuses_still_trains_and_says_so(scripts, pipeline_run, tmp_path, tracking_server, monkeypatch, capsys):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-key")

    assert _train(scripts, pipeline_run, tmp_path) == 0

    assert (tmp_path / "model.joblib").exists()
    assert tracking_server.refused and tracking_server.runs == {}
    assert f"the run is not logged to MLflow {tracking_server.arn}: experiments/get-by-name answered HTTP 403" in capsys.readouterr().err


def test_training_with_an_unreachable_tracking_server_still_trains_and_says_so(scripts, pipeline_run, tmp_path, tracking_server, monkeypatch, capsys):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", f"http://127.0.0.1:{closed.getsockname()[1]}")

    assert _train(scripts, pipeline_run, tmp_path) == 0

    assert (tmp_path / "model.joblib").exists()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"the run is not logged to MLflow {tracking_server.arn}: ")
    assert "Connection refused" in line


def test_training_whose_tracking_server_fails_still_trains_and_says_so(scripts, pipeline_run, tmp_path, tracking_server, capsys):
    tracking_server.failures["runs/log-batch"] = 500

    assert _train(scripts, pipeline_run, tmp_path) == 0

    assert (tmp_path / "model.joblib").exists()
    assert "runs/log-batch answered HTTP 500 INTERNAL_ERROR" in capsys.readouterr().err


def test_training_without_a_tracking_server_calls_nothing(scripts, pipeline_run, tmp_path, tracking_server, monkeypatch, capsys):
    from tests.conftest import aws_unreachable

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    attempts: list[str] = []
    with aws_unreachable(attempts):
        assert _train(scripts, pipeline_run, tmp_path) == 0

    assert attempts == []
    assert tracking_server.requests == []
    assert capsys.readouterr().err == ""

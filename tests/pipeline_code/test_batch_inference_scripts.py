"""The batch inference scripts, run end to end on real data with the container paths as arguments.

The model is the training pipeline's own: its preprocess and train steps run on scikit-learn's bundled
breast-cancer data and the result is packed as the training job packs it. The batch is the same data in
three files, scored by two simulated inference instances that split the files between them (as
ShardedByS3Key does) and write to one output folder, as every instance uploads to one prefix.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from pipeline_code import render
from pipeline_code.batch_inference import postprocessing, predict, preprocessing
from pipeline_code.training import preprocess as training_preprocess
from pipeline_code.training import train as training_train
from tests.pipeline_code.model_artifact import hyperparameter_arguments, package_model

FOLDER = render.PACKAGE_DIR / "batch_inference"
# Rows of the 569 in each batch file; clinic-a keeps the label column, which scoring ignores.
BATCH_FILES = {"clinic-a": slice(0, 200), "clinic-b": slice(200, 400), "clinic-c": slice(400, 569)}
SHARDS = (("clinic-a", "clinic-c"), ("clinic-b",))


@pytest.fixture(scope="module")
def breast_cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def model_dir(breast_cancer, tmp_path_factory) -> Path:
    """A folder holding the training pipeline's model.tar.gz, made by its own preprocess and train steps."""
    work = tmp_path_factory.mktemp("training")
    (work / "input").mkdir()
    breast_cancer.to_csv(work / "input" / "breast_cancer.csv", index=False)
    assert training_preprocess.main(["--input-dir", str(work / "input"), "--output-dir", str(work / "processed")]) == 0
    assert training_train.main(
        [
            "--train-dir", str(work / "processed" / "train"),
            "--validation-dir", str(work / "processed" / "validation"),
            "--model-dir", str(work / "model"),
            *hyperparameter_arguments(NEstimators=50),
        ]
    ) == 0
    return package_model(work / "model", work / "artifact").parent


@pytest.fixture(scope="module")
def batch_input(breast_cancer, tmp_path_factory) -> Path:
    """Three files to score; the ones without the label list their columns in reverse order."""
    directory = tmp_path_factory.mktemp("batch-input")
    for name, rows in BATCH_FILES.items():
        part = breast_cancer.iloc[rows]
        if name != "clinic-a":
            part = part.drop(columns="target")[list(reversed(part.columns.drop("target")))]
        part.to_csv(directory / f"{name}.csv", index=False)
    return directory


@pytest.fixture(scope="module")
def batch_run(batch_input, model_dir, tmp_path_factory) -> SimpleNamespace:
    """Preprocess -> inference on two instances, each with its shard of the files -> postprocess."""
    work = tmp_path_factory.mktemp("batch")
    run = SimpleNamespace(preprocessed=work / "preprocessed", predictions=work / "predictions", output=work / "output")
    assert preprocessing.main(["--input-dir", str(batch_input), "--output-dir", str(run.preprocessed)]) == 0
    hosts = _resource_config(work, hosts=len(SHARDS))
    for number, stems in enumerate(SHARDS):
        shard = work / f"shard-{number}"
        shard.mkdir()
        for stem in stems:
            (shard / f"{stem}.csv").write_bytes((run.preprocessed / f"{stem}.csv").read_bytes())
        assert predict.main(
            [
                "--input-dir", str(shard),
                "--model-dir", str(model_dir),
                "--output-dir", str(run.predictions),
                "--resource-config", str(hosts),
            ]
        ) == 0
    assert postprocessing.main(["--input-dir", str(run.predictions), "--output-dir", str(run.output)]) == 0
    return run


def _resource_config(directory: Path, hosts: int) -> Path:
    """SageMaker's /opt/ml/config/resourceconfig.json for a job on `hosts` instances."""
    path = directory / "resourceconfig.json"
    path.write_text(json.dumps({"current_host": "algo-1", "hosts": [f"algo-{n + 1}" for n in range(hosts)]}))
    return path


def _fails(script, argv: list[str], capsys) -> str:
    """Runs a script that must fail; its message, which must be one line (SageMaker's FailureReason)."""
    assert script.main(argv) != 0
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1, message
    return message


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_preprocessing_writes_one_file_per_input_file_named_after_it(batch_run):
    assert sorted(p.name for p in batch_run.preprocessed.iterdir()) == ["clinic-a.csv", "clinic-b.csv", "clinic-c.csv"]


def test_preprocessing_drops_the_label_and_keeps_every_row_and_feature(batch_run, breast_cancer):
    prepared = pd.read_csv(batch_run.preprocessed / "clinic-a.csv")

    assert len(prepared) == 200
    assert "target" not in prepared.columns
    assert sorted(prepared.columns) == sorted(breast_cancer.columns.drop("target"))


def test_every_instance_writes_a_predictions_file_per_input_file_into_the_shared_output(batch_run):
    assert sorted(p.name for p in batch_run.predictions.iterdir()) == [
        "clinic-a.predictions.csv",
        "clinic-b.predictions.csv",
        "clinic-c.predictions.csv",
    ]


def test_a_predictions_file_has_a_row_per_input_row_with_label_and_probability(batch_run):
    predictions = pd.read_csv(batch_run.predictions / "clinic-b.predictions.csv")

    assert list(predictions.columns) == ["row", "prediction", "positive_probability", "is_positive"]
    assert list(predictions["row"]) == list(range(200))
    assert set(predictions["prediction"]) <= {0, 1}
    assert predictions["positive_probability"].between(0, 1).all()
    assert (predictions["is_positive"] == predictions["prediction"]).all()


def test_predictions_match_the_true_labels_whatever_the_column_order(batch_run, breast_cancer):
    predictions = pd.read_csv(batch_run.output / "predictions.csv")
    # clinic-b and clinic-c list their columns in reverse; the model must still see its own order.
    for name in ("clinic-b", "clinic-c"):
        scored = predictions[predictions["source_file"] == f"{name}.csv"]
        truth = breast_cancer["target"].iloc[BATCH_FILES[name]].to_numpy()

        assert (scored["prediction"].to_numpy() == truth).mean() >= 0.9


def test_postprocessing_gathers_the_predictions_of_every_shard(batch_run):
    predictions = pd.read_csv(batch_run.output / "predictions.csv")

    assert len(predictions) == 569
    assert predictions.columns[0] == "source_file"
    assert predictions.groupby("source_file").size().to_dict() == {"clinic-a.csv": 200, "clinic-b.csv": 200, "clinic-c.csv": 169}


def test_summary_counts_rows_files_and_the_positive_rate(batch_run):
    summary = json.loads((batch_run.output / "summary.json").read_text())
    predictions = pd.read_csv(batch_run.output / "predictions.csv")

    assert summary["rows"] == 569
    assert summary["files"] == 3
    assert summary["positive_rate"] == pytest.approx(predictions["is_positive"].mean())
    assert summary["rows_per_file"] == {"clinic-a.csv": 200, "clinic-b.csv": 200, "clinic-c.csv": 169}


def test_the_scripts_run_as_the_jobs_run_them(batch_input, model_dir, tmp_path):
    """`python3 <script>.py` with the container paths as arguments, as the workflow's jobs start them."""
    steps = [
        ("preprocessing.py", "--input-dir", batch_input, "--output-dir", tmp_path / "preprocessed"),
        ("predict.py", "--input-dir", tmp_path / "preprocessed", "--model-dir", model_dir, "--output-dir", tmp_path / "predictions"),
        ("postprocessing.py", "--input-dir", tmp_path / "predictions", "--output-dir", tmp_path / "output"),
    ]
    for script, *arguments in steps:
        result = subprocess.run(
            [sys.executable, str(FOLDER / script), *map(str, arguments)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr

    assert json.loads((tmp_path / "output" / "summary.json").read_text())["rows"] == 569


def test_a_failing_script_exits_non_zero_with_its_message_on_stderr(tmp_path):
    result = subprocess.run(
        [sys.executable, str(FOLDER / "postprocessing.py"), "--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("Postprocessing failed: no *.predictions.csv files under")


def test_an_empty_input_file_fails_preprocessing_naming_it(tmp_path, capsys):
    _write(tmp_path / "in" / "monday.csv", "")

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys)

    assert message == "Preprocessing failed: monday.csv is empty"
    assert not (tmp_path / "out").exists()


def test_a_file_with_a_header_and_no_rows_fails_preprocessing(tmp_path, capsys):
    _write(tmp_path / "in" / "monday.csv", "mean radius,mean texture\n")

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys)

    assert message == "Preprocessing failed: monday.csv has a header but no rows"


def test_a_non_numeric_feature_fails_preprocessing_naming_file_and_column(tmp_path, capsys):
    _write(tmp_path / "in" / "monday.csv", "mean radius,clinic\n14.1,north\n")

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys)

    assert message == "Preprocessing failed: monday.csv: feature columns must be numeric; these are not: clinic"


def test_no_input_files_fails_preprocessing(tmp_path, capsys):
    (tmp_path / "in").mkdir()

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys)

    assert message == f"Preprocessing failed: no .csv files under {tmp_path / 'in'}"


def test_two_input_files_with_one_name_fail_preprocessing(tmp_path, capsys):
    _write(tmp_path / "in" / "north" / "monday.csv", "a\n1\n")
    _write(tmp_path / "in" / "south" / "monday.csv", "a\n2\n")

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys)

    assert "north/monday.csv and south/monday.csv would both be written as monday.csv" in message


def test_an_instance_left_without_files_by_sharding_preprocesses_nothing_and_succeeds(tmp_path):
    """More instances than files: ShardedByS3Key gives some instances none, which is no error."""
    (tmp_path / "in").mkdir()
    hosts = _resource_config(tmp_path, hosts=2)

    arguments = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"), "--resource-config", str(hosts)]

    assert preprocessing.main(arguments) == 0
    assert not (tmp_path / "out").exists()


def test_an_instance_left_without_files_by_sharding_scores_nothing_and_succeeds(model_dir, tmp_path):
    (tmp_path / "in").mkdir()
    hosts = _resource_config(tmp_path, hosts=2)

    arguments = ["--input-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "out"), "--resource-config", str(hosts)]

    assert predict.main(arguments) == 0
    assert not (tmp_path / "out").exists()


def test_a_missing_feature_column_fails_inference_naming_file_and_column(batch_run, model_dir, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    prepared = pd.read_csv(batch_run.preprocessed / "clinic-b.csv")
    prepared.drop(columns="worst symmetry").to_csv(tmp_path / "in" / "clinic-b.csv", index=False)

    message = _fails(
        predict, ["--input-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "out")], capsys
    )

    assert message == "Inference failed: clinic-b.csv lacks feature column(s) the model needs: worst symmetry"
    assert not (tmp_path / "out").exists()


def test_an_empty_input_file_fails_inference_naming_it(model_dir, tmp_path, capsys):
    _write(tmp_path / "in" / "clinic-b.csv", "")

    message = _fails(
        predict, ["--input-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "out")], capsys
    )

    assert message == "Inference failed: clinic-b.csv is empty"


def test_no_input_files_fails_inference(model_dir, tmp_path, capsys):
    (tmp_path / "in").mkdir()

    message = _fails(
        predict, ["--input-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "out")], capsys
    )

    assert message == f"Inference failed: no .csv files under {tmp_path / 'in'}"


def test_a_missing_model_fails_inference_saying_what_it_expected(batch_run, tmp_path, capsys):
    (tmp_path / "model").mkdir()

    message = _fails(
        predict,
        ["--input-dir", str(batch_run.preprocessed), "--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "out")],
        capsys,
    )

    assert message == (
        f"Inference failed: no model.joblib or features.json in {tmp_path / 'model'}; "
        "expected the training pipeline's model.tar.gz"
    )


def test_inference_leaves_the_model_input_as_it_found_it(batch_run, model_dir):
    """The archive is unpacked elsewhere: SageMaker's input folders need not be writable."""
    assert [p.name for p in model_dir.iterdir()] == ["model.tar.gz"]


def test_no_predictions_fail_postprocessing(tmp_path, capsys):
    (tmp_path / "in").mkdir()

    message = _fails(postprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys)

    assert message == f"Postprocessing failed: no *.predictions.csv files under {tmp_path / 'in'}; the inference step scored nothing"


def test_a_predictions_file_without_its_columns_fails_postprocessing_naming_them(tmp_path, capsys):
    _write(tmp_path / "in" / "clinic-a.predictions.csv", "row,prediction\n0,1\n")

    message = _fails(postprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys)

    assert message == (
        "Postprocessing failed: clinic-a.predictions.csv lacks column(s) positive_probability, is_positive; "
        "is it the inference step's output?"
    )

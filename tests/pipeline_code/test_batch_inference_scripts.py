"""The batch inference scripts, run end to end on real data with the container paths as arguments.

The model is the training pipeline's own: its preprocess and train steps run on scikit-learn's bundled
breast-cancer data and the result is packed as the training job packs it. The batch is the same data in
three files of the three formats people have (CSV, gzip CSV, Parquet), with chunks and parts small enough
that every file streams through several chunks and is split into several parts. Two simulated instances
preprocess (each with some of the files) and two score (each with some of the parts, as ShardedByS3Key
deals them out), all writing to one output folder as every instance uploads to one prefix.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_breast_cancer

from pipeline_code import render
from pipeline_code.batch_inference import postprocessing, predict, preprocessing
from tests.pipeline_code.model_artifact import train_model_artifact

FOLDER = render.PACKAGE_DIR / "batch_inference"
FEATURE_COUNT = 30
# Rows of the 569 in each batch file; clinic-a keeps the label column, which scoring ignores.
BATCH_FILES = {"clinic-a.csv": slice(0, 200), "clinic-b.csv.gz": slice(200, 400), "clinic-c.parquet": slice(400, 569)}
PREPROCESSING_SHARDS = (("clinic-a.csv", "clinic-c.parquet"), ("clinic-b.csv.gz",))
# In MB of float64 features: chunks of 21 rows and parts of 65 rows of the 30 features.
CHUNK_MB = str(21 * FEATURE_COUNT * 8 / 2**20)
PART_MB = str(65 * FEATURE_COUNT * 8 / 2**20)
ROWS_PER_PART = 65


@pytest.fixture(scope="module")
def breast_cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def model_dir(breast_cancer, tmp_path_factory) -> Path:
    """A folder holding the training pipeline's model.tar.gz, made by its own preprocess and train steps."""
    return train_model_artifact(breast_cancer, tmp_path_factory.mktemp("training"), n_estimators=10).parent


def write_input(frame: pd.DataFrame, path: Path) -> Path:
    """`frame` as the file `path` names: .csv, .csv.gz or .parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif path.name.endswith(".gz"):
        with gzip.open(path, "wt") as file:
            frame.to_csv(file, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def batch_input(breast_cancer, tmp_path_factory) -> Path:
    """Three files to score; the ones without the label list their columns in reverse order."""
    directory = tmp_path_factory.mktemp("batch-input")
    for name, rows in BATCH_FILES.items():
        part = breast_cancer.iloc[rows]
        if name != "clinic-a.csv":
            part = part.drop(columns="target")[list(reversed(part.columns.drop("target")))]
        write_input(part, directory / name)
    return directory


def _copy(source: Path, names: list[str], target: Path) -> Path:
    """The files `names` (paths under `source`) copied under `target`, as an instance's shard of a prefix."""
    for name in names:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes((source / name).read_bytes())
    return target


def _names(directory: Path, pattern: str = "*") -> list[str]:
    return sorted(path.relative_to(directory).as_posix() for path in directory.rglob(pattern) if path.is_file())


@pytest.fixture(scope="module")
def batch_run(batch_input, model_dir, tmp_path_factory) -> SimpleNamespace:
    """Preprocess on two instances -> inference on two instances, the parts dealt out between them -> postprocess."""
    work = tmp_path_factory.mktemp("batch")
    run = SimpleNamespace(preprocessed=work / "preprocessed", predictions=work / "predictions", output=work / "output")
    hosts = _resource_config(work, hosts=2)
    for number, names in enumerate(PREPROCESSING_SHARDS):
        shard = _copy(batch_input, list(names), work / f"pre-shard-{number}")
        assert preprocessing.main(
            ["--input-dir", str(shard), "--output-dir", str(run.preprocessed), "--chunk-size-mb", CHUNK_MB, "--part-size-mb", PART_MB,
             "--resource-config", str(hosts), "--failure-message-file", str(work / "message")]
        ) == 0
    parts = _names(run.preprocessed)
    # On one core: the model runs once per 21-row chunk, and on more each run would hand the trees to threads
    # (the scripts run as commands below score on every core).
    for number in range(2):
        shard = _copy(run.preprocessed, parts[number::2], work / f"infer-shard-{number}")
        assert predict.main(
            ["--input-dir", str(shard), "--model-dir", str(model_dir), "--output-dir", str(run.predictions), "--chunk-size-mb", CHUNK_MB,
             "--jobs", "1", "--resource-config", str(hosts), "--failure-message-file", str(work / "message")]
        ) == 0
    assert postprocessing.main(["--input-dir", str(run.predictions), "--output-dir", str(run.output), "--failure-message-file", str(work / "message")]) == 0
    assert not (work / "message").exists()
    return run


def _resource_config(directory: Path, hosts: int) -> Path:
    """SageMaker's /opt/ml/config/resourceconfig.json for a job on `hosts` instances."""
    path = directory / "resourceconfig.json"
    path.write_text(json.dumps({"current_host": "algo-1", "hosts": [f"algo-{n + 1}" for n in range(hosts)]}))
    return path


def _fails(script, argv: list[str], capsys, tmp_path: Path) -> str:
    """Runs a script that must fail; its message, which must be one line on stderr and the same text in the
    message file SageMaker returns as ExitMessage."""
    message_file = tmp_path / "failure" / "message"
    assert script.main([*argv, "--failure-message-file", str(message_file)]) != 0
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1, message
    assert message_file.read_text() == message
    return message


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _parts(directory: Path, suffix: str = ".parquet") -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(directory / name) for name in _names(directory, f"*{suffix}")}


# -- preprocessing ------------------------------------------------------------------------------------------


def test_preprocessing_writes_parts_of_bounded_size_named_after_each_files_path(batch_run):
    parts = _parts(batch_run.preprocessed)

    assert list(parts) == [
        *(f"clinic-a.csv.part-{n:05d}.parquet" for n in range(4)),
        *(f"clinic-b.csv.gz.part-{n:05d}.parquet" for n in range(4)),
        *(f"clinic-c.parquet.part-{n:05d}.parquet" for n in range(3)),
    ]
    assert max(len(part) for part in parts.values()) == ROWS_PER_PART


def test_preprocessing_drops_the_label_and_keeps_every_row_and_feature_as_float64(batch_run, breast_cancer):
    parts = _parts(batch_run.preprocessed)
    clinic_a = pd.concat([parts[name] for name in parts if name.startswith("clinic-a.csv.")], ignore_index=True)

    assert list(clinic_a["row"]) == list(range(200))
    assert "target" not in clinic_a.columns
    assert sorted(clinic_a.columns.drop("row")) == sorted(breast_cancer.columns.drop("target"))
    assert set(clinic_a.dtypes.drop("row")) == {np.dtype("float64")}
    features = breast_cancer.columns.drop("target")
    np.testing.assert_allclose(clinic_a[features].to_numpy(), breast_cancer.iloc[:200][features].to_numpy())


def test_each_part_names_its_input_file_in_its_metadata(batch_run):
    sources = {name: pq.read_schema(batch_run.preprocessed / name).metadata[b"source_file"].decode() for name in _parts(batch_run.preprocessed)}

    assert {name: source for name, source in sources.items() if ".part-00000" in name} == {
        "clinic-a.csv.part-00000.parquet": "clinic-a.csv",
        "clinic-b.csv.gz.part-00000.parquet": "clinic-b.csv.gz",
        "clinic-c.parquet.part-00000.parquet": "clinic-c.parquet",
    }


def test_preprocessing_writes_one_row_group_per_chunk(batch_run):
    metadata = pq.read_metadata(batch_run.preprocessed / "clinic-a.csv.part-00000.parquet")

    assert [metadata.row_group(n).num_rows for n in range(metadata.num_row_groups)] == [21, 21, 21, 2]


@pytest.mark.parametrize("name", ["monday.csv.gz", "monday.parquet"])
def test_gzip_csv_and_parquet_inputs_give_the_parts_a_csv_gives(breast_cancer, name, tmp_path):
    frame = breast_cancer.iloc[:100]
    prepared = {}
    for input_name in ("monday.csv", name):
        write_input(frame, tmp_path / input_name / input_name)
        assert preprocessing.main(["--input-dir", str(tmp_path / input_name), "--output-dir", str(tmp_path / f"out-{input_name}"),
                                   "--chunk-size-mb", CHUNK_MB, "--failure-message-file", str(tmp_path / "message")]) == 0
        (part,) = _parts(tmp_path / f"out-{input_name}").values()
        prepared[input_name] = part

    pd.testing.assert_frame_equal(prepared[name], prepared["monday.csv"])


def test_same_named_files_in_different_folders_on_different_instances_keep_all_their_rows(breast_cancer, model_dir, tmp_path):
    """ShardedByS3Key may give north/monday.csv and south/monday.csv to different instances."""
    hosts = _resource_config(tmp_path, hosts=2)
    common = ["--resource-config", str(hosts), "--failure-message-file", str(tmp_path / "message")]
    for number, (folder, rows) in enumerate((("north", slice(0, 100)), ("south", slice(100, 150)))):
        write_input(breast_cancer.iloc[rows], tmp_path / f"instance-{number}" / "in" / folder / "monday.csv")
        assert preprocessing.main(["--input-dir", str(tmp_path / f"instance-{number}" / "in"), "--output-dir", str(tmp_path / "pre"), *common]) == 0
        assert predict.main(
            ["--input-dir", str(tmp_path / "pre" / folder), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "pred" / folder), *common]
        ) == 0
    assert postprocessing.main(["--input-dir", str(tmp_path / "pred"), "--output-dir", str(tmp_path / "out"), "--failure-message-file", str(tmp_path / "message")]) == 0

    assert json.loads((tmp_path / "out" / "summary.json").read_text())["rows_per_file"] == {"north/monday.csv": 100, "south/monday.csv": 50}


def test_an_empty_input_file_fails_preprocessing_naming_it(tmp_path, capsys):
    _write(tmp_path / "in" / "monday.csv", "")

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys, tmp_path)

    assert message == "Preprocessing failed: monday.csv is empty"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("monday.csv", "monday.csv has a header but no rows"), ("monday.csv.gz", "monday.csv.gz has a header but no rows"), ("monday.parquet", "monday.parquet has no rows")],
)
def test_a_file_with_columns_and_no_rows_fails_preprocessing(name, expected, tmp_path, capsys):
    write_input(pd.DataFrame({"mean radius": pd.Series([], dtype=float), "mean texture": pd.Series([], dtype=float)}), tmp_path / "in" / name)

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys, tmp_path)

    assert message == f"Preprocessing failed: {expected}"


@pytest.mark.parametrize("name", ["monday.csv", "monday.csv.gz", "monday.parquet"])
def test_a_non_numeric_feature_fails_preprocessing_naming_file_and_column(name, tmp_path, capsys):
    write_input(pd.DataFrame({"mean radius": [14.1], "clinic": ["north"], "ward": ["b"]}), tmp_path / "in" / name)

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys, tmp_path)

    assert message == f"Preprocessing failed: {name}: feature columns must be numeric; these are not: clinic, ward"


def test_a_non_numeric_value_after_the_first_chunk_fails_preprocessing_naming_file_column_and_value(tmp_path, capsys):
    # More than the 1 MB block Arrow parses first, so the header check cannot see it.
    rows = [f"{n}.5,{n}" for n in range(150_000)] + ["7.5,north"]
    _write(tmp_path / "in" / "monday.csv", "mean radius,mean texture\n" + "\n".join(rows) + "\n")

    message = _fails(
        preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"), "--chunk-size-mb", CHUNK_MB], capsys, tmp_path
    )

    assert message == "Preprocessing failed: monday.csv: feature columns must be numeric; these are not: mean texture (it holds 'north')"


def test_a_file_that_is_not_what_its_name_says_fails_preprocessing_naming_it(tmp_path, capsys):
    _write(tmp_path / "in" / "monday.parquet", "mean radius\n14.1\n")

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys, tmp_path)

    assert message.startswith("Preprocessing failed: monday.parquet cannot be read as Parquet: ")


def test_a_bad_header_in_a_later_file_fails_preprocessing_before_anything_is_written(breast_cancer, tmp_path, capsys):
    write_input(breast_cancer.iloc[:10], tmp_path / "in" / "a-monday.csv")
    _write(tmp_path / "in" / "b-tuesday.csv", "mean radius,clinic\n14.1,north\n")

    _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys, tmp_path)

    assert not (tmp_path / "out").exists()


def test_no_input_files_fails_preprocessing(tmp_path, capsys):
    (tmp_path / "in").mkdir()

    message = _fails(preprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys, tmp_path)

    assert message == f"Preprocessing failed: no .csv, .csv.gz, .parquet files under {tmp_path / 'in'}"


def test_an_instance_left_without_files_by_sharding_preprocesses_nothing_and_succeeds(tmp_path):
    """More instances than files: ShardedByS3Key gives some instances none, which is no error."""
    (tmp_path / "in").mkdir()
    hosts = _resource_config(tmp_path, hosts=2)

    arguments = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"), "--resource-config", str(hosts)]

    assert preprocessing.main(arguments) == 0
    assert not (tmp_path / "out").exists()


def test_a_failure_message_longer_than_sagemaker_keeps_is_cut_to_one_kilobyte(tmp_path, capsys):
    columns = {f"free text column number {n}": ["x"] for n in range(60)}
    write_input(pd.DataFrame(columns), tmp_path / "in" / "monday.csv")
    message_file = tmp_path / "message"

    assert preprocessing.main(["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"), "--failure-message-file", str(message_file)]) == 1

    assert len(message_file.read_bytes()) == 1024
    assert capsys.readouterr().err.startswith(message_file.read_text())


# -- inference ----------------------------------------------------------------------------------------------


def test_every_instance_writes_a_predictions_part_per_part_into_the_shared_output(batch_run):
    assert _names(batch_run.predictions) == [name.removesuffix(".parquet") + ".predictions.parquet" for name in _names(batch_run.preprocessed)]


def test_a_predictions_part_has_a_row_per_input_row_with_label_and_probability(batch_run):
    predictions = pd.read_parquet(batch_run.predictions / "clinic-b.csv.gz.part-00001.predictions.parquet")

    assert list(predictions.columns) == ["row", "prediction", "positive_probability", "is_positive"]
    assert list(predictions["row"]) == list(range(65, 130))
    assert set(predictions["prediction"]) <= {0, 1}
    assert predictions["positive_probability"].between(0, 1).all()
    assert (predictions["is_positive"] == predictions["prediction"]).all()


def test_the_label_is_what_the_models_predict_answers_though_the_model_runs_once_per_row(model_dir, breast_cancer, tmp_path):
    model, feature_names = predict.load_model(model_dir, tmp_path)
    features = breast_cancer[feature_names]
    expected = model.predict(features)
    calls = []

    class CountingModel:
        classes_ = model.classes_

        def predict_proba(self, rows):
            calls.append(len(rows))
            return model.predict_proba(rows)

    scored = predict.predict(CountingModel(), features)

    assert calls == [len(features)]
    assert (scored["prediction"] == expected).all()


def test_the_model_runs_on_the_cores_asked_for(model_dir, tmp_path):
    model, _ = predict.load_model(model_dir, tmp_path)

    predict.use_cores(model, 3)

    assert model.n_jobs == 3


def test_a_missing_feature_column_fails_inference_before_any_part_is_scored(batch_run, model_dir, tmp_path, capsys):
    _copy(batch_run.preprocessed, ["clinic-a.csv.part-00000.parquet"], tmp_path / "in")
    lacking = pq.read_table(batch_run.preprocessed / "clinic-b.csv.gz.part-00000.parquet")
    pq.write_table(lacking.drop_columns(["worst symmetry"]), tmp_path / "in" / "clinic-b.csv.gz.part-00000.parquet")

    message = _fails(
        predict, ["--input-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "out")], capsys, tmp_path
    )

    assert message == "Inference failed: clinic-b.csv.gz lacks feature column(s) the model needs: worst symmetry"
    assert not (tmp_path / "out").exists()


def test_an_empty_part_fails_inference_naming_it(model_dir, tmp_path, capsys):
    _write(tmp_path / "in" / "clinic-b.csv.part-00000.parquet", "")

    message = _fails(
        predict, ["--input-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "out")], capsys, tmp_path
    )

    assert message == "Inference failed: clinic-b.csv.part-00000.parquet is empty"


def test_no_parts_fail_inference(model_dir, tmp_path, capsys):
    (tmp_path / "in").mkdir()

    message = _fails(
        predict, ["--input-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "out")], capsys, tmp_path
    )

    assert message == f"Inference failed: no .parquet parts under {tmp_path / 'in'}; the preprocessing step prepared nothing"


def test_an_instance_left_without_parts_by_sharding_scores_nothing_and_succeeds(model_dir, tmp_path):
    (tmp_path / "in").mkdir()
    hosts = _resource_config(tmp_path, hosts=2)

    arguments = ["--input-dir", str(tmp_path / "in"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "out"), "--resource-config", str(hosts)]

    assert predict.main(arguments) == 0
    assert not (tmp_path / "out").exists()


def test_a_missing_model_fails_inference_saying_what_it_expected(batch_run, tmp_path, capsys):
    (tmp_path / "model").mkdir()

    message = _fails(
        predict,
        ["--input-dir", str(batch_run.preprocessed), "--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "out")],
        capsys,
        tmp_path,
    )

    assert message == (
        f"Inference failed: no model.joblib or features.json in {tmp_path / 'model'}; "
        "expected the training pipeline's model.tar.gz"
    )


def test_an_unexpected_error_still_leaves_its_reason_for_sagemaker(batch_run, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.joblib").write_bytes(b"not a model")
    (tmp_path / "model" / "features.json").write_text("[]")
    message_file = tmp_path / "message"

    # joblib reads the bytes as a pickle and fails on an opcode it does not know.
    with pytest.raises(KeyError):
        predict.main(["--input-dir", str(batch_run.preprocessed), "--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "out"),
                      "--failure-message-file", str(message_file)])

    assert message_file.read_text().startswith("Inference failed unexpectedly: ")


def test_inference_leaves_the_model_input_as_it_found_it(batch_run, model_dir):
    """The archive is unpacked elsewhere: SageMaker's input folders need not be writable."""
    assert [p.name for p in model_dir.iterdir()] == ["model.tar.gz"]


# -- postprocessing -----------------------------------------------------------------------------------------


def test_postprocessing_gathers_every_row_of_every_shard_in_file_and_row_order(batch_run):
    predictions = pd.read_csv(batch_run.output / "predictions.csv")

    assert list(predictions.columns) == ["source_file", "row", "prediction", "positive_probability", "is_positive"]
    assert predictions.groupby("source_file", sort=False).size().to_dict() == {"clinic-a.csv": 200, "clinic-b.csv.gz": 200, "clinic-c.parquet": 169}
    for name, rows in BATCH_FILES.items():
        assert list(predictions[predictions["source_file"] == name]["row"]) == list(range(rows.stop - rows.start))


def test_every_prediction_joins_back_to_its_input_row_and_matches_its_label(batch_run, breast_cancer):
    predictions = pd.read_csv(batch_run.output / "predictions.csv")
    truth = pd.concat(
        [pd.DataFrame({"source_file": name, "row": range(rows.stop - rows.start), "target": breast_cancer["target"].iloc[rows].to_numpy()})
         for name, rows in BATCH_FILES.items()]
    )

    joined = predictions.merge(truth, on=["source_file", "row"], validate="one_to_one")

    assert len(joined) == 569
    # clinic-b and clinic-c list their columns in reverse; the model must still see its own order.
    assert (joined["prediction"] == joined["target"]).mean() >= 0.95


def test_summary_counts_rows_files_and_the_positive_rate(batch_run):
    summary = json.loads((batch_run.output / "summary.json").read_text())
    predictions = pd.read_csv(batch_run.output / "predictions.csv")

    assert summary["rows"] == 569
    assert summary["files"] == 3
    assert summary["positive_rate"] == pytest.approx(predictions["is_positive"].mean())
    assert summary["mean_positive_probability"] == pytest.approx(predictions["positive_probability"].mean())
    assert summary["rows_per_file"] == {"clinic-a.csv": 200, "clinic-b.csv.gz": 200, "clinic-c.parquet": 169}


def test_postprocessing_writes_parquet_when_asked(batch_run, tmp_path):
    assert postprocessing.main(["--input-dir", str(batch_run.predictions), "--output-dir", str(tmp_path), "--output-format", "parquet"]) == 0

    as_parquet = pd.read_parquet(tmp_path / "predictions.parquet")
    pd.testing.assert_frame_equal(as_parquet, pd.read_csv(batch_run.output / "predictions.csv"), check_dtype=False)


def test_no_predictions_fail_postprocessing(tmp_path, capsys):
    (tmp_path / "in").mkdir()

    message = _fails(postprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys, tmp_path)

    assert message == f"Postprocessing failed: no *.predictions.parquet files under {tmp_path / 'in'}; the inference step scored nothing"


def test_a_predictions_part_without_its_columns_fails_postprocessing_naming_them(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"row": [0], "prediction": [1]}), tmp_path / "in" / "clinic-a.csv.part-00000.predictions.parquet")

    message = _fails(postprocessing, ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")], capsys, tmp_path)

    assert message == (
        "Postprocessing failed: clinic-a.csv.part-00000.predictions.parquet lacks column(s) positive_probability, is_positive; "
        "is it the inference step's output?"
    )


# -- as the jobs run them ------------------------------------------------------------------------------------


def test_the_scripts_run_as_the_jobs_run_them(batch_input, model_dir, tmp_path):
    """`python3 <script>.py` with the container paths as arguments, as the workflow's jobs start them."""
    message = ("--failure-message-file", tmp_path / "message")
    steps = [
        ("preprocessing.py", "--input-dir", batch_input, "--output-dir", tmp_path / "preprocessed", *message),
        ("predict.py", "--input-dir", tmp_path / "preprocessed", "--model-dir", model_dir, "--output-dir", tmp_path / "predictions", *message),
        ("postprocessing.py", "--input-dir", tmp_path / "predictions", "--output-dir", tmp_path / "output", *message),
    ]
    for script, *arguments in steps:
        result = subprocess.run(
            [sys.executable, str(FOLDER / script), *map(str, arguments)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr

    assert json.loads((tmp_path / "output" / "summary.json").read_text())["rows"] == 569


def test_a_failing_script_exits_non_zero_with_its_message_on_stderr_and_in_the_message_file(tmp_path):
    message_file = tmp_path / "output" / "message"
    result = subprocess.run(
        [sys.executable, str(FOLDER / "postprocessing.py"), "--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"),
         "--failure-message-file", str(message_file)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("Postprocessing failed: no *.predictions.parquet files under")
    assert message_file.read_text() == result.stderr.strip()


def test_a_label_of_words_and_a_column_that_turns_from_integers_to_decimals_are_prepared(tmp_path):
    """The label is never parsed as a feature, and a feature's type is float64 whatever its first chunk held."""
    rows = [f"{n},benign" for n in range(150_000)] + ["2.5,malignant"]
    _write(tmp_path / "in" / "monday.csv", "mean radius,target\n" + "\n".join(rows) + "\n")

    assert preprocessing.main(["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"), "--failure-message-file", str(tmp_path / "message")]) == 0

    prepared = pd.concat(_parts(tmp_path / "out").values(), ignore_index=True)
    assert list(prepared.columns) == ["row", "mean radius"]
    assert prepared["mean radius"].iloc[-1] == 2.5

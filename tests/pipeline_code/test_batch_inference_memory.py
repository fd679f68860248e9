"""The batch scripts' memory is bounded by a chunk, not by the input.

Each script runs in a process of its own, as a job runs it: first on an input of many chunks, then on a
larger one. Libraries, the model and the readers' buffers are paid for in the first run, so a streaming
script's peak resident memory does not grow in the second beyond what Arrow's CSV reader reads ahead, which
varies with how busy the machine is (up to about 40 MB seen); a script that held a whole file (or every
result) would grow by at least the difference between the inputs, which is kept well above that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_breast_cancer

from pipeline_code import render
from tests.pipeline_code.model_artifact import train_model_artifact

FOLDER = render.PACKAGE_DIR / "batch_inference"
# The first file (117 MB of text) outgrows the CSV reader's buffers; the second is three times as large, so a
# script that held its input would grow by twice the first file's 48 MB of features, and the allowance (one
# first file's features) leaves room for the reader's read-ahead on a loaded machine.
ROWS = {"first": 199_150, "second": 597_450}
# Predictions are 25 bytes a row (row, prediction, probability, flag): postprocessing's inputs need more rows.
PREDICTION_ROWS = {"first": 1_250_000, "second": 2_500_000}
FIRST_FEATURES_BYTES = ROWS["first"] * 30 * 8
FIRST_PREDICTIONS_BYTES = PREDICTION_ROWS["first"] * (8 + 8 + 8 + 1)
CHUNK_MB = "1"
# Larger than either file: each stays one part, which inference must still read a chunk at a time.
PART_MB = "128"
MEGABYTE = 1 << 20
# Runs the script's main() on each argument list in turn, in one process, and prints its peak resident memory
# (bytes) after each. The
# peak is the kernel's VmHWM: getrusage's ru_maxrss would start at the peak of the process that started this one.
PEAK_AFTER_EACH_RUN = """
import json, re, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
script = __import__(sys.argv[2])
peaks = []
for argv in json.loads(sys.argv[3]):
    if script.main(argv) != 0:
        sys.exit(f"{sys.argv[2]} failed on {argv}")
    peaks.append(int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024)
print(json.dumps(peaks))  # the last line, after what the script printed
"""


def peak_growth(script: str, first: list[str], second: list[str]) -> int:
    """Bytes by which the script's peak memory grew from its first run to its second."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_AFTER_EACH_RUN, str(FOLDER), script, json.dumps([first, second])],
        capture_output=True,
        text=True,
        check=False,
        # Arrow's default allocator (jemalloc) hands freed pages back to the system on a timer, so how much of
        # the first run's memory the second reuses would depend on how busy the machine is; the system
        # allocator's reuse does not, and what the scripts keep is the same.
        env={**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"},
    )
    assert result.returncode == 0, result.stderr
    first_peak, second_peak = json.loads(result.stdout.splitlines()[-1])
    return second_peak - first_peak


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The bundled data's features repeated with noise into two CSV files, the training pipeline's model, and two
    sets of predictions parts."""
    directory = tmp_path_factory.mktemp("memory")
    data = load_breast_cancer(as_frame=True).frame
    features = data.drop(columns="target")
    rng = np.random.default_rng(21)
    # Rows of text written once and repeated: the scripts' memory does not depend on the values.
    block_rows = len(features) * 10
    values = np.resize(features.to_numpy(), (block_rows, features.shape[1])) * rng.normal(1, 0.01, (block_rows, features.shape[1]))
    header, text = pa_csv_text(pa.table({column: values[:, index] for index, column in enumerate(features.columns)}))
    for run, rows in ROWS.items():
        (directory / run / "input").mkdir(parents=True)
        with open(directory / run / "input" / f"{run}.csv", "wb") as file:
            file.write(header)
            file.writelines(text for _ in range(rows // block_rows))
    for run, rows in PREDICTION_ROWS.items():
        write_predictions(directory / run / "scored", rows, rng)
    train_model_artifact(data, directory / "training", n_estimators=20)
    return directory


def pa_csv_text(table: pa.Table) -> tuple[bytes, bytes]:
    """The table as CSV: its header line and its rows."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink)
    header, rows = sink.getvalue().to_pybytes().split(b"\n", 1)
    return header + b"\n", rows


def write_predictions(directory: Path, rows: int, rng: np.random.Generator) -> None:
    """Predictions parts as the inference step writes them: four parts of one file, in row groups of a chunk."""
    directory.mkdir(parents=True)
    per_part = -(-rows // 4)
    for part, start in enumerate(range(0, rows, per_part)):
        count = min(per_part, rows - start)
        probability = rng.random(count)
        table = pa.table(
            {"row": np.arange(start, start + count), "prediction": (probability > 0.5).astype(np.int64), "positive_probability": probability,
             "is_positive": (probability > 0.5).astype(np.int8)}
        ).replace_schema_metadata({b"source_file": b"scored.csv"})
        pq.write_table(table, directory / f"scored.csv.part-{part:05d}.predictions.parquet", row_group_size=65_536)


@pytest.fixture(scope="module")
def growth(work) -> dict[str, int]:
    """Each script's peak-memory growth from the first input to the second, run as the jobs chain them."""
    # One core: the threaded CSV reader's read-ahead varies by 10 to 30 MB with the threads' timing on a busy
    # machine, which would decide the test; with one core the scripts read serially, and memory depends only
    # on what they keep.
    message = ["--failure-message-file", str(work / "message"), "--jobs", "1"]
    steps = {
        "preprocessing": lambda run: ["--input-dir", str(work / run / "input"), "--output-dir", str(work / run / "preprocessed"),
                                       "--chunk-size-mb", CHUNK_MB, "--part-size-mb", PART_MB, *message],
        "predict": lambda run: ["--input-dir", str(work / run / "preprocessed"), "--model-dir", str(work / "training" / "artifact"),
                                 "--output-dir", str(work / run / "predictions"), "--chunk-size-mb", CHUNK_MB, *message],
        "postprocessing": lambda run: ["--input-dir", str(work / run / "scored"), "--output-dir", str(work / run / "output"), *message],
    }
    return {script: peak_growth(script, arguments("first"), arguments("second")) for script, arguments in steps.items()}


def test_preprocessing_memory_does_not_grow_with_the_file(growth):
    assert growth["preprocessing"] < FIRST_FEATURES_BYTES, f"grew by {growth['preprocessing'] / MEGABYTE:.0f} MB"


def test_inference_memory_does_not_grow_with_the_file(growth):
    assert growth["predict"] < FIRST_FEATURES_BYTES, f"grew by {growth['predict'] / MEGABYTE:.0f} MB"


def test_postprocessing_memory_does_not_grow_with_the_predictions(growth):
    assert growth["postprocessing"] < FIRST_PREDICTIONS_BYTES / 2, f"grew by {growth['postprocessing'] / MEGABYTE:.0f} MB"

"""The batch scripts' memory is bounded by a chunk, not by the input.

Each script's main() runs twice, on an input of many chunks and then on one three times as large, and what it
has allocated at its peak is counted: Arrow's buffers through a memory pool of the run's own, numpy's arrays
and Python's objects through tracemalloc. A streaming script's peak is a few chunks (and the model) in both
runs; a script that held its input, or every result, would grow by twice the first input, and the allowance is
the first input. Counted allocations do not depend on how busy the machine is, as the process's resident
memory does (the allocator's reuse of freed pages, the readers' threads), so inputs of a few megabytes decide
it. What a C library allocates on its own is not counted; `scripts/bench.py --batch-scale` measures the
resident memory at a million rows.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sklearn.datasets import load_breast_cancer

from pipeline_code.batch_inference import postprocessing, predict, preprocessing
from tests.pipeline_code.model_artifact import train_model_artifact

MEGABYTE = 1 << 20
FEATURE_COUNT = 30
# A quarter of a megabyte of float64 features: 1,092 rows of the 30.
CHUNK_MB = 0.25
ROWS_PER_CHUNK = int(CHUNK_MB * MEGABYTE) // (FEATURE_COUNT * 8)
# The CSV reader reads up to 32 blocks ahead on a thread of its own, however large the input; with the script's
# 1 MB blocks that read-ahead, which depends on the thread's timing, would need inputs of hundreds of megabytes
# to stand out from. With 32 KB blocks it is about 1 MB, and the script reads a chunk of several blocks.
TEST_CSV_BLOCK_BYTES = 32 << 10
# How many rows each script's first input has: enough chunks that holding them would stand well above what a
# streaming run's peak varies by (under 0.1 MB in 30 runs, idle and with both cores busy; the allowances are
# 2.5 MB, 0.5 MB and 2.1 MB).
FIRST_ROWS = {"preprocessing": 10 * ROWS_PER_CHUNK, "predict": 20 * ROWS_PER_CHUNK, "postprocessing": 80 * ROWS_PER_CHUNK}
# What inference writes for a row, and postprocessing reads: row, prediction, positive_probability, is_positive.
PREDICTION_ROW_BYTES = 8 + 8 + 8 + 1
# Every pool a run allocated from stays alive: the CSV reader's read-ahead thread may still hold a block.
POOLS: list[pa.MemoryPool] = []


def peak_of(script, argv: list[str]) -> int:
    """The bytes the script's main() had allocated at its peak, from what was allocated before it started: the
    peak of Arrow's buffers (in a pool of the run's own) plus the peak of numpy's arrays and Python's objects
    (tracemalloc)."""
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    POOLS.append(pool)
    previous_pool = pa.default_memory_pool()
    already_tracing = tracemalloc.is_tracing()
    if not already_tracing:
        tracemalloc.start()
    pa.set_memory_pool(pool)
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        assert script.main(argv) == 0
        python_peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        pa.set_memory_pool(previous_pool)
        if not already_tracing:
            tracemalloc.stop()
    return pool.max_memory() + python_peak


def growth(script, arguments: Callable[[str], list[str]]) -> int:
    """Bytes by which the script's peak grew from the first input to the second, each run on one core as a job
    on a one-core instance runs it: with more, the threaded readers' read-ahead depends on the threads' timing."""
    cores = pa.cpu_count()
    try:
        first = peak_of(script, [*arguments("first"), "--jobs", "1"])
        second = peak_of(script, [*arguments("second"), "--jobs", "1"])
    finally:
        pa.set_cpu_count(cores)
    return second - first


def features(rows: int) -> np.ndarray:
    """The bundled data's features, repeated with noise to `rows`: the scripts' memory does not depend on the values."""
    rng = np.random.default_rng(21)
    return np.resize(load_breast_cancer().data, (rows, FEATURE_COUNT)) * rng.normal(1, 0.01, (rows, FEATURE_COUNT))


def inputs(directory: Path, write: Callable[[Path, int], None]) -> Path:
    """`write(folder, copies)` for the first input (one copy) and the second (three)."""
    for run, copies in (("first", 1), ("second", 3)):
        write(directory / run, copies)
    return directory


def test_preprocessing_memory_does_not_grow_with_the_file(tmp_path, monkeypatch):
    rows = FIRST_ROWS["preprocessing"]
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(pa.table({f"feature {n}": column for n, column in enumerate(features(rows).T)}), sink)
    header, lines = sink.getvalue().to_pybytes().split(b"\n", 1)

    def write(folder: Path, copies: int) -> None:
        (folder / "input").mkdir(parents=True)
        (folder / "input" / "batch.csv").write_bytes(header + b"\n" + lines * copies)

    work = inputs(tmp_path, write)
    monkeypatch.setattr(preprocessing, "CSV_BLOCK_BYTES", TEST_CSV_BLOCK_BYTES)

    grew = growth(preprocessing, lambda run: [
        "--input-dir", str(work / run / "input"), "--output-dir", str(work / run / "output"), "--chunk-size-mb", str(CHUNK_MB),
        "--failure-message-file", str(work / "message"),
    ])

    # Holding the file's features would grow it by twice the first file's.
    assert grew < rows * FEATURE_COUNT * 8, f"grew by {grew / MEGABYTE:.2f} MB"


def test_inference_memory_does_not_grow_with_the_parts(tmp_path):
    """A part as preprocessing writes it, a row group a chunk; the model is the training pipeline's (its size
    is the same in both runs)."""
    rows = FIRST_ROWS["predict"]
    data = load_breast_cancer(as_frame=True).frame
    model = train_model_artifact(data, tmp_path / "training", n_estimators=5)
    names = list(data.columns.drop("target"))
    table = pa.table({"row": np.arange(rows), **dict(zip(names, features(rows).T))}).replace_schema_metadata({b"source_file": b"batch.csv"})

    def write(folder: Path, copies: int) -> None:
        folder.mkdir(parents=True)
        with pq.ParquetWriter(folder / "batch.csv.part-00000.parquet", table.schema) as writer:
            for _ in range(copies):
                writer.write_table(table, row_group_size=ROWS_PER_CHUNK)

    work = inputs(tmp_path / "runs", write)

    grew = growth(predict, lambda run: [
        "--input-dir", str(work / run), "--model-dir", str(model.parent), "--output-dir", str(work / run / "predictions"),
        "--chunk-size-mb", str(CHUNK_MB), "--failure-message-file", str(work / "message"),
    ])

    # Holding every chunk's predictions would grow it by twice the first input's predictions.
    assert grew < rows * PREDICTION_ROW_BYTES, f"grew by {grew / MEGABYTE:.2f} MB"


def test_postprocessing_memory_does_not_grow_with_the_predictions(tmp_path):
    """Four parts of one input file, as inference writes them: row groups of a chunk."""
    rows = FIRST_ROWS["postprocessing"]
    per_part = rows // 4
    probability = np.random.default_rng(21).random(per_part)

    def write(folder: Path, copies: int) -> None:
        folder.mkdir(parents=True)
        for part in range(4):
            start = part * per_part * copies
            repeated = np.tile(probability, copies)
            table = pa.table(
                {"row": np.arange(start, start + len(repeated)), "prediction": (repeated > 0.5).astype(np.int64),
                 "positive_probability": repeated, "is_positive": (repeated > 0.5).astype(np.int8)}
            ).replace_schema_metadata({b"source_file": b"batch.csv"})
            pq.write_table(table, folder / f"batch.csv.part-{part:05d}.predictions.parquet", row_group_size=ROWS_PER_CHUNK)

    work = inputs(tmp_path, write)

    grew = growth(postprocessing, lambda run: ["--input-dir", str(work / run), "--output-dir", str(work / run / "output"),
                                                "--failure-message-file", str(work / "message")])

    # Holding every row group would grow it by twice the first input's predictions.
    assert grew < rows * PREDICTION_ROW_BYTES, f"grew by {grew / MEGABYTE:.2f} MB"

"""Batch inference: score every Parquet part the preprocessing step wrote, with the training pipeline's model.

Runs as a Processing Job on the custom inference image (``python3 predict.py``); every container path is
an argument with the SageMaker default, so the same script runs locally and in ``docker run``. The model
arrives as the training job's ``model.tar.gz`` (``model.joblib`` and ``features.json``, as the training
pipeline's train step writes them). The input is distributed ShardedByS3Key, so with several instances each
one scores some of the parts: every part ``<path>.parquet`` becomes ``<path>.predictions.parquet`` under the
output, a name no other instance writes.

Every part's columns are checked against the model's features before anything is scored. Then the script
streams: one part at a time, ``--chunk-size-mb`` of float64 features at a time, each chunk's predictions written
before the next chunk is read, so memory is the model plus a few chunks whatever the size of the parts. The
model runs once per row (``predict_proba``) on every core (its ``n_jobs``, set from ``--jobs``).

Each predictions part has one row per input row: ``row`` (its position in the input file, from 0),
``prediction`` (the class with the highest probability: what ``predict`` answers for the training pipeline's
random forest), ``positive_probability`` (the probability of the model's second class, the positive one for a
0/1 label) and ``is_positive``; its Parquet metadata names the input file (``source_file``).

A failure names the file (and column) on stderr and in ``--failure-message-file``, which SageMaker returns as
the job's ``ExitMessage``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MODEL_ARCHIVE = "model.tar.gz"
MODEL_FILE = "model.joblib"
FEATURES_FILE = "features.json"
PART_SUFFIX = ".parquet"
PREDICTIONS_SUFFIX = ".predictions.parquet"
# The Parquet metadata key naming the input file a part's rows come from (preprocessing.py writes it).
SOURCE_FILE_KEY = b"source_file"
MEGABYTE = 1 << 20
FLOAT64_BYTES = 8
# SageMaker keeps at most 1 KB of /opt/ml/output/message as the job's ExitMessage.
EXIT_MESSAGE_BYTES = 1024


class BadInput(ValueError):
    """The model or an input file cannot be used; the message names the file and says why."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    parser.add_argument("--model-dir", default="/opt/ml/processing/input/model")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument("--chunk-size-mb", type=float, default=32.0)
    # 0: every core this process may run on.
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--failure-message-file", default="/opt/ml/output/message")
    # SageMaker writes the job's hosts here; locally it is absent, which means one instance.
    parser.add_argument("--resource-config", default="/opt/ml/config/resourceconfig.json")
    return parser.parse_args(argv)


def instance_count(resource_config: Path) -> int:
    if not resource_config.is_file():
        return 1
    return len(json.loads(resource_config.read_text()).get("hosts", [])) or 1


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def report_failure(message: str, message_file: Path) -> None:
    """On stderr for the job's logs, and in the file SageMaker returns as the job's ExitMessage."""
    print(message, file=sys.stderr)
    try:
        message_file.parent.mkdir(parents=True, exist_ok=True)
        message_file.write_text(message.encode()[:EXIT_MESSAGE_BYTES].decode(errors="ignore"))
    except OSError as error:
        print(f"(the message could not be written to {message_file}: {error})", file=sys.stderr)


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


def use_cores(model, jobs: int) -> None:
    """Lets a model that has `n_jobs` (the random forest has) run on `jobs` cores."""
    if "n_jobs" in model.get_params(deep=False):
        model.set_params(n_jobs=jobs)


def source_file(part: pq.ParquetFile, name: str) -> str:
    """The input file the part's rows come from, as preprocessing recorded it; the part's own name otherwise."""
    metadata = part.schema_arrow.metadata or {}
    return metadata[SOURCE_FILE_KEY].decode() if SOURCE_FILE_KEY in metadata else name


def check_part(path: Path, name: str, feature_names: list[str]) -> str:
    """The part's source file, once the part is known to hold `row` and every feature the model needs."""
    if path.stat().st_size == 0:
        raise BadInput(f"{name} is empty")
    try:
        part = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise BadInput(f"{name} cannot be read as Parquet: {error}; is it the preprocessing step's output?") from None
    source = source_file(part, name)
    columns = set(part.schema_arrow.names)
    missing = [column for column in feature_names if column not in columns]
    if missing:
        raise BadInput(f"{source} lacks feature column(s) the model needs: {', '.join(missing)}")
    if "row" not in columns:
        raise BadInput(f"{name} has no 'row' column; is it the preprocessing step's output?")
    if part.metadata.num_rows == 0:
        raise BadInput(f"{source} has no rows")
    return source


def chunks(path: Path, feature_names: list[str], rows_per_chunk: int) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """(row numbers, features in the model's column order) of at most `rows_per_chunk` rows at a time.

    Read a row group at a time (preprocessing writes one per chunk), each let go before the next is read:
    Arrow's batch iterator reads ahead and holds about twice as much (measured on the bench's parts)."""
    part = pq.ParquetFile(path, pre_buffer=False)
    for group in range(part.num_row_groups):
        table = part.read_row_group(group, columns=["row", *feature_names])
        yield from _split(table, feature_names, rows_per_chunk)
        del table


def _split(table: pa.Table, feature_names: list[str], rows_per_chunk: int) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    for offset in range(0, table.num_rows, rows_per_chunk):
        piece = table.slice(offset, rows_per_chunk)
        features = np.empty((piece.num_rows, len(feature_names)), dtype=np.float64)
        for index, name in enumerate(feature_names):
            features[:, index] = piece.column(name).to_numpy()
        yield piece.column("row").to_numpy(), pd.DataFrame(features, columns=feature_names, copy=False)


def predict(model, features: pd.DataFrame) -> dict[str, np.ndarray]:
    """One evaluation of the model per row: the label is the class with the highest probability."""
    probabilities = model.predict_proba(features)
    labels = model.classes_[probabilities.argmax(axis=1)]
    return {
        "prediction": labels,
        "positive_probability": probabilities[:, 1],
        "is_positive": (labels == model.classes_[1]).astype(np.int8),
    }


def score_part(model, path: Path, target: Path, source: str, feature_names: list[str], rows_per_chunk: int) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for row, features in chunks(path, feature_names, rows_per_chunk):
            table = pa.table({"row": row, **predict(model, features)})
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema.with_metadata({SOURCE_FILE_KEY: source.encode()}))
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    input_dir, output_dir, message_file = Path(args.input_dir), Path(args.output_dir), Path(args.failure_message_file)
    jobs = args.jobs or available_cores()
    pa.set_cpu_count(jobs)
    parts = sorted(path for path in input_dir.rglob(f"*{PART_SUFFIX}") if path.is_file())
    if not parts and instance_count(Path(args.resource_config)) > 1:
        # More instances than parts: ShardedByS3Key leaves some instances without any.
        print(f"No {PART_SUFFIX} parts under {input_dir} on this instance: the other instances have the input's parts")
        return 0
    try:
        if not parts:
            raise BadInput(f"no {PART_SUFFIX} parts under {input_dir}; the preprocessing step prepared nothing")
        with tempfile.TemporaryDirectory() as unpack_dir:
            model, feature_names = load_model(Path(args.model_dir), Path(unpack_dir))
        names = [path.relative_to(input_dir).as_posix() for path in parts]
        sources = [check_part(path, name, feature_names) for path, name in zip(parts, names)]
        use_cores(model, jobs)
        rows_per_chunk = max(1, int(args.chunk_size_mb * MEGABYTE) // (FLOAT64_BYTES * len(feature_names)))
        rows = sum(
            score_part(model, path, output_dir / (name[: -len(PART_SUFFIX)] + PREDICTIONS_SUFFIX), source, feature_names, rows_per_chunk)
            for path, name, source in zip(parts, names, sources)
        )
    except BadInput as error:
        report_failure(f"Inference failed: {error}", message_file)
        return 1
    except Exception as error:
        report_failure(f"Inference failed unexpectedly: {type(error).__name__}: {error}", message_file)
        raise
    print(f"Scored {rows} rows from {len(parts)} part(s) of {len(set(sources))} file(s) with {len(feature_names)} features on {jobs} core(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

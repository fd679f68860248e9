"""Batch preprocessing: check every input file and write the columns the model scores as Parquet parts.

Runs as a script-mode Processing Job on the SageMaker scikit-learn image (``python3 preprocessing.py``); every
container path is an argument with the SageMaker default, so the same script runs locally. The input is
distributed ShardedByS3Key, so with several instances each one sees some of the files.

Inputs: ``*.csv``, ``*.csv.gz`` and ``*.parquet``, in any folders under the input. Features are prepared the
way the training pipeline's preprocess step prepared them: numeric columns, everything but the label. The
label column may be present (it is dropped); missing feature values are kept, as training kept them.

The script streams: one file at a time, a chunk of rows at a time (as many rows as ``--chunk-size-mb`` of
float64 features; Arrow parses CSV in 1 MB blocks on every core and reads about 40 MB ahead), each chunk written
as one Parquet row group before the next is read, so its memory is bounded by a few chunks whatever the size of
the files. Every file becomes Parquet parts of at most
``--part-size-mb`` of float64 features, named after the file's path under the input
(``north/monday.csv`` -> ``north/monday.csv.part-00000.parquet``): names stay unique across instances, and the
inference job's ShardedByS3Key spreads the parts of one large file over its instances. Each part holds ``row``
(the row's position in its input file, from 0) and the features as float64; its Parquet metadata names the
input file (``source_file``), so every prediction joins back to its input row.

Every header is checked before anything is written; a failure names the file (and column) on stderr and in
``--failure-message-file``, which SageMaker returns as the job's ``ExitMessage``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
# The Parquet metadata key naming the input file a part's rows come from.
SOURCE_FILE_KEY = b"source_file"
MEGABYTE = 1 << 20
# Arrow parses CSV a block at a time, blocks in parallel: small blocks keep every core busy on little memory
# (measured on the 1M-row bench file: 1 MB blocks parse about twice as fast as 16 MB blocks, in a tenth of the memory).
CSV_BLOCK_BYTES = 1 << 20
FLOAT64_BYTES = 8
# SageMaker keeps at most 1 KB of /opt/ml/output/message as the job's ExitMessage.
EXIT_MESSAGE_BYTES = 1024


class BadInput(ValueError):
    """An input file cannot be scored; the message names the file and says why."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument("--label-column", default="target")
    parser.add_argument("--chunk-size-mb", type=float, default=32.0)
    parser.add_argument("--part-size-mb", type=float, default=128.0)
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


@dataclass(frozen=True)
class InputFile:
    path: Path
    name: str  # its path under the input folder, which is also its key under the input prefix
    is_csv: bool
    columns: tuple[str, ...]
    features: tuple[str, ...]


def input_paths(input_dir: Path) -> list[tuple[Path, str]]:
    suffixes = CSV_SUFFIXES + PARQUET_SUFFIXES
    paths = sorted(path for path in input_dir.rglob("*") if path.is_file() and path.name.endswith(suffixes))
    return [(path, path.relative_to(input_dir).as_posix()) for path in paths]


def is_numeric(data_type: pa.DataType) -> bool:
    checks = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_boolean, pa.types.is_null)
    return any(check(data_type) for check in checks)


def _feature_columns(name: str, schema: pa.Schema, label_column: str) -> tuple[str, ...]:
    seen: set[str] = set()
    for column in schema.names:
        if column in seen:
            raise BadInput(f"{name} has two columns named '{column}'")
        seen.add(column)
    features = tuple(column for column in schema.names if column != label_column)
    if not features:
        raise BadInput(f"{name} has no feature columns, only '{label_column}'")
    non_numeric = [column for column in features if not is_numeric(schema.field(column).type)]
    if non_numeric:
        raise BadInput(f"{name}: feature columns must be numeric; these are not: {', '.join(non_numeric)}")
    return features


def _open_csv(path: Path, convert_options: pa_csv.ConvertOptions | None = None) -> pa_csv.CSVStreamingReader:
    """A reader that parses CSV_BLOCK_BYTES of text at a time, on every core; gzip is recognised by the name's .gz.

    With one core it reads serially: the threaded reader's read-ahead would only add memory, of a size that
    depends on the threads' timing."""
    return pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=pa.cpu_count() > 1), convert_options=convert_options)


def check_header(path: Path, name: str, label_column: str) -> InputFile:
    """The file's columns, checked from its header (and, for CSV, the types in its first 1 MB); nothing is written."""
    if path.stat().st_size == 0:
        raise BadInput(f"{name} is empty")
    is_csv = name.endswith(CSV_SUFFIXES)
    if is_csv:
        try:
            reader = _open_csv(path)
            schema = reader.schema
            has_rows = any(batch.num_rows for batch in reader)
        except pa.ArrowInvalid as error:
            if str(error) == "Empty CSV file":
                raise BadInput(f"{name} is empty") from None
            raise BadInput(f"{name} cannot be read as CSV: {error}") from None
        except OSError as error:
            raise BadInput(f"{name} cannot be read as CSV: {error}") from None
        no_rows = f"{name} has a header but no rows"
    else:
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as error:
            raise BadInput(f"{name} cannot be read as Parquet: {error}") from None
        schema, has_rows = parquet.schema_arrow, parquet.metadata.num_rows > 0
        no_rows = f"{name} has no rows"
    features = _feature_columns(name, schema, label_column)
    if not has_rows:
        raise BadInput(no_rows)
    return InputFile(path, name, is_csv, tuple(schema.names), features)


CONVERSION_ERROR = re.compile(r"column #(\d+): .*?invalid value '(.*)'", re.DOTALL)


def _conversion_failure(source: InputFile, error: Exception) -> BadInput:
    """The file and column of a value that is not a number, from Arrow's "In CSV column #3: ... invalid value 'x'"."""
    found = CONVERSION_ERROR.search(str(error))
    if found and int(found.group(1)) < len(source.columns):
        column, value = source.columns[int(found.group(1))], found.group(2)
        return BadInput(f"{source.name}: feature columns must be numeric; these are not: {column} (it holds '{value}')")
    return BadInput(f"{source.name} cannot be read as {'CSV' if source.is_csv else 'Parquet'}: {error}")


def feature_chunks(source: InputFile, rows_per_chunk: int) -> Iterator[pa.Table]:
    """The file's features as float64 tables of `rows_per_chunk` rows (the last one shorter), each read when it is
    asked for."""
    try:
        if source.is_csv:
            options = pa_csv.ConvertOptions(column_types={column: pa.float64() for column in source.features}, include_columns=list(source.features))
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in _open_csv(source.path, options):
                pending.append(batch)
                pending_rows += batch.num_rows
                while pending_rows >= rows_per_chunk:
                    chunk = pa.Table.from_batches(pending)
                    yield chunk.slice(0, rows_per_chunk)
                    pending, pending_rows = chunk.slice(rows_per_chunk).to_batches(), pending_rows - rows_per_chunk
            if pending_rows:
                yield pa.Table.from_batches(pending)
        else:
            for batch in pq.ParquetFile(source.path).iter_batches(batch_size=rows_per_chunk, columns=list(source.features)):
                yield pa.Table.from_arrays([column.cast(pa.float64()) for column in batch.columns], names=list(source.features))
    except (pa.ArrowInvalid, OSError) as error:
        raise _conversion_failure(source, error) from None


class PartWriter:
    """Writes one input file's rows into Parquet parts of at most `rows_per_part` rows, a batch at a time."""

    def __init__(self, output_dir: Path, source: InputFile, rows_per_part: int) -> None:
        self.output_dir, self.source, self.rows_per_part = output_dir, source, rows_per_part
        fields = [pa.field("row", pa.int64()), *(pa.field(column, pa.float64()) for column in source.features)]
        self.schema = pa.schema(fields, metadata={SOURCE_FILE_KEY: source.name.encode()})
        self.rows = 0
        self.parts: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_part = 0

    def write(self, chunk: pa.Table) -> None:
        """Writes the chunk as one row group (two where a part ends inside it)."""
        offset = 0
        while offset < chunk.num_rows:
            if self._writer is None or self._rows_in_part == self.rows_per_part:
                self._next_part()
            take = min(chunk.num_rows - offset, self.rows_per_part - self._rows_in_part)
            rows = pa.array(np.arange(self.rows, self.rows + take, dtype=np.int64))
            piece = chunk.slice(offset, take)
            self._writer.write_table(pa.Table.from_arrays([rows, *piece.columns], schema=self.schema), row_group_size=take)
            offset += take
            self.rows += take
            self._rows_in_part += take

    def _next_part(self) -> None:
        self.close()
        path = self.output_dir / f"{self.source.name}.part-{len(self.parts):05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(path, self.schema)
        self.parts.append(path)
        self._rows_in_part = 0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def rows_in(size_bytes: int, source: InputFile) -> int:
    """How many rows of the file's features, as float64, fill `size_bytes`."""
    return max(1, size_bytes // (FLOAT64_BYTES * len(source.features)))


def prepare(source: InputFile, output_dir: Path, chunk_bytes: int, part_bytes: int) -> PartWriter:
    """Streams one file into its parts; the writer says how many rows and which parts."""
    writer = PartWriter(output_dir, source, rows_per_part=rows_in(part_bytes, source))
    try:
        for chunk in feature_chunks(source, rows_in(chunk_bytes, source)):
            writer.write(chunk)
    finally:
        writer.close()
    return writer


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    input_dir, output_dir, message_file = Path(args.input_dir), Path(args.output_dir), Path(args.failure_message_file)
    chunk_bytes, part_bytes = int(args.chunk_size_mb * MEGABYTE), int(args.part_size_mb * MEGABYTE)
    pa.set_cpu_count(args.jobs or available_cores())
    try:
        paths = input_paths(input_dir)
        if not paths and instance_count(Path(args.resource_config)) > 1:
            # More instances than files: ShardedByS3Key leaves some instances without any.
            print(f"No input files under {input_dir} on this instance: the other instances have the input's files")
            return 0
        if not paths:
            raise BadInput(f"no {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)} files under {input_dir}")
        sources = [check_header(path, name, args.label_column) for path, name in paths]
        written = [prepare(source, output_dir, chunk_bytes, part_bytes) for source in sources]
    except BadInput as error:
        report_failure(f"Preprocessing failed: {error}", message_file)
        return 1
    except Exception as error:
        report_failure(f"Preprocessing failed unexpectedly: {type(error).__name__}: {error}", message_file)
        raise
    rows, parts = sum(writer.rows for writer in written), sum(len(writer.parts) for writer in written)
    print(f"Prepared {rows} rows from {len(written)} file(s) into {parts} Parquet part(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

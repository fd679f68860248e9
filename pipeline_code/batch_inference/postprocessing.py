"""Batch postprocessing: gather every instance's predictions into one file and summarise the run.

Runs as a script-mode Processing Job on the SageMaker scikit-learn image (``python3 postprocessing.py``),
on one instance, after the inference job. Its input is the inference job's whole output prefix: the
``*.predictions.parquet`` parts of every input file, from however many instances scored them. It writes
``predictions.csv`` (or ``predictions.parquet`` with ``--output-format parquet``): every row, ordered by input
file and row, with ``source_file`` (the input file's path under the input prefix) and ``row`` (the row's
position in that file, from 0), so each prediction joins back to its input row; and ``summary.json`` (rows,
files, positive rate, rows per file).

The script streams: a row group of one part at a time is read, written and let go, and the summary is counted
as it goes, so memory stays at a few row groups whatever the number of rows. A failure names the file on
stderr and in ``--failure-message-file``, which SageMaker returns as the job's ``ExitMessage``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

SUFFIX = ".predictions.parquet"
COLUMNS = ("row", "prediction", "positive_probability", "is_positive")
# The Parquet metadata key naming the input file a part's rows come from (preprocessing.py writes it).
SOURCE_FILE_KEY = b"source_file"
# ".part-00012" in a part's name: its position among its input file's parts.
PART_NUMBER = re.compile(r"\.part-(\d+)\.predictions\.parquet$")
# SageMaker keeps at most 1 KB of /opt/ml/output/message as the job's ExitMessage.
EXIT_MESSAGE_BYTES = 1024


class BadInput(ValueError):
    """The predictions cannot be gathered; the message names the file and says why."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument("--output-format", choices=("csv", "parquet"), default="csv")
    # 0: every core this process may run on.
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--failure-message-file", default="/opt/ml/output/message")
    return parser.parse_args(argv)


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
class Part:
    path: Path
    name: str
    source_file: str
    number: int


def check_part(path: Path, name: str) -> Part:
    if path.stat().st_size == 0:
        raise BadInput(f"{name} is empty")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise BadInput(f"{name} cannot be read as Parquet: {error}; is it the inference step's output?") from None
    missing = [column for column in COLUMNS if column not in schema.names]
    if missing:
        raise BadInput(f"{name} lacks column(s) {', '.join(missing)}; is it the inference step's output?")
    metadata = schema.metadata or {}
    source_file = metadata[SOURCE_FILE_KEY].decode() if SOURCE_FILE_KEY in metadata else name[: -len(SUFFIX)]
    numbered = PART_NUMBER.search(name)
    return Part(path, name, source_file, int(numbered.group(1)) if numbered else 0)


def parts(input_dir: Path) -> list[Part]:
    """Every predictions part under the input, in input-file order and, within a file, in row order."""
    paths = sorted(path for path in input_dir.rglob(f"*{SUFFIX}") if path.is_file())
    if not paths:
        raise BadInput(f"no *{SUFFIX} files under {input_dir}; the inference step scored nothing")
    found = [check_part(path, path.relative_to(input_dir).as_posix()) for path in paths]
    return sorted(found, key=lambda part: (part.source_file, part.number))


@dataclass
class Summary:
    rows: int = 0
    positives: int = 0
    probability_sum: float = 0.0
    rows_per_file: dict[str, int] = field(default_factory=dict)

    def count(self, source_file: str, table: pa.Table) -> None:
        self.rows += table.num_rows
        self.positives += int(pc.sum(table["is_positive"]).as_py() or 0)
        self.probability_sum += float(pc.sum(table["positive_probability"]).as_py() or 0.0)
        self.rows_per_file[source_file] = self.rows_per_file.get(source_file, 0) + table.num_rows

    def as_json(self) -> dict:
        return {
            "rows": self.rows,
            "files": len(self.rows_per_file),
            "positive_rate": self.positives / self.rows if self.rows else 0.0,
            "mean_positive_probability": self.probability_sum / self.rows if self.rows else 0.0,
            "rows_per_file": dict(sorted(self.rows_per_file.items())),
        }


class PredictionsWriter:
    """predictions.csv or predictions.parquet, written a table at a time."""

    def __init__(self, output_dir: Path, output_format: str) -> None:
        self.path = output_dir / f"predictions.{output_format}"
        self.output_format = output_format
        self._writer: pa_csv.CSVWriter | pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.output_format == "csv":
                # Numbers bare, strings quoted (a file name may hold a comma).
                self._writer = pa_csv.CSVWriter(self.path, table.schema, write_options=pa_csv.WriteOptions(quoting_style="needed"))
            else:
                self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def gather(found: list[Part], writer: PredictionsWriter, summary: Summary) -> None:
    for part in found:
        predictions = pq.ParquetFile(part.path, pre_buffer=False)
        for group in range(predictions.num_row_groups):
            table = predictions.read_row_group(group, columns=list(COLUMNS)).replace_schema_metadata(None)
            source = pa.repeat(pa.scalar(part.source_file, pa.string()), table.num_rows)
            writer.write(table.add_column(0, "source_file", source))
            summary.count(part.source_file, table)
            del table, source


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    output_dir, message_file = Path(args.output_dir), Path(args.failure_message_file)
    pa.set_cpu_count(args.jobs or available_cores())
    summary = Summary()
    try:
        found = parts(Path(args.input_dir))
        writer = PredictionsWriter(output_dir, args.output_format)
        try:
            gather(found, writer, summary)
        finally:
            writer.close()
    except BadInput as error:
        report_failure(f"Postprocessing failed: {error}", message_file)
        return 1
    except Exception as error:
        report_failure(f"Postprocessing failed unexpectedly: {type(error).__name__}: {error}", message_file)
        raise
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "summary.json").write_text(json.dumps(summary.as_json(), indent=2))
    print(
        f"Gathered {summary.rows} predictions of {len(summary.rows_per_file)} file(s) from {len(found)} part(s) into {writer.path.name}; "
        f"positive rate {summary.as_json()['positive_rate']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

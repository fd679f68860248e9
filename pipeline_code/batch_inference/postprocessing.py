"""Batch postprocessing: gather every instance's predictions into one file and summarise the run.

Runs as a script-mode Processing Job on the SageMaker scikit-learn image (``python3 postprocessing.py``),
on one instance, after the inference job. Its input is the inference job's whole output prefix: one
``<input stem>.predictions.csv`` per scored file, from however many instances scored them. It writes
``predictions.csv`` (every row, with ``source_file`` naming the input file it came from) and
``summary.json`` (rows, files, positive rate, rows per file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

SUFFIX = ".predictions.csv"
COLUMNS = ("row", "prediction", "positive_probability", "is_positive")


class BadInput(ValueError):
    """The predictions cannot be gathered; the message names the file and says why."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    return parser.parse_args(argv)


def read_predictions(path: Path) -> pd.DataFrame:
    try:
        predictions = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise BadInput(f"{path.name} is empty") from None
    missing = [column for column in COLUMNS if column not in predictions.columns]
    if missing:
        raise BadInput(f"{path.name} lacks column(s) {', '.join(missing)}; is it the inference step's output?")
    # Slicing, not str.removesuffix: the prebuilt scikit-learn images include Pythons older than 3.9.
    source_file = path.name[: -len(SUFFIX)] + ".csv"
    return predictions[list(COLUMNS)].assign(source_file=source_file)[["source_file", *COLUMNS]]


def gather(input_dir: Path) -> pd.DataFrame:
    files = sorted(path for path in input_dir.rglob(f"*{SUFFIX}") if path.is_file())
    if not files:
        raise BadInput(f"no *{SUFFIX} files under {input_dir}; the inference step scored nothing")
    return pd.concat([read_predictions(path) for path in files], ignore_index=True)


def summarise(predictions: pd.DataFrame) -> dict:
    rows_per_file = predictions.groupby("source_file", sort=True).size()
    return {
        "rows": int(len(predictions)),
        "files": int(len(rows_per_file)),
        "positive_rate": float(predictions["is_positive"].mean()) if len(predictions) else 0.0,
        "mean_positive_probability": float(predictions["positive_probability"].mean()) if len(predictions) else 0.0,
        "rows_per_file": {name: int(count) for name, count in rows_per_file.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    output_dir = Path(args.output_dir)
    try:
        predictions = gather(Path(args.input_dir))
    except BadInput as error:
        print(f"Postprocessing failed: {error}", file=sys.stderr)
        return 1
    summary = summarise(predictions)
    output_dir.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(output_dir / "predictions.csv", index=False)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Gathered {summary['rows']} predictions from {summary['files']} file(s); positive rate {summary['positive_rate']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

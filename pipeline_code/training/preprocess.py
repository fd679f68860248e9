"""Preprocess step: read the training CSVs, validate them, split into train/validation/test.

Runs in the SageMaker scikit-learn processing container; every container path is an argument with the
SageMaker default, so the same script runs locally in the tests. Besides the splits it writes
``manifest.json``: which files were read (with their SHA-256) and, when ``--input-uri`` is given, which S3
object versions they were, because the pipeline is started with a prefix, not a fixed set of objects.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

SPLITS = {"train": 0.70, "validation": 0.15, "test": 0.15}
RANDOM_STATE = 42


class BadData(ValueError):
    """The input cannot train a binary classifier; the message says why."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument("--label-column", default="target")
    parser.add_argument("--input-uri", default="", help="S3 prefix the input was downloaded from, for the manifest")
    return parser.parse_args(argv)


def load(input_dir: Path, label_column: str) -> tuple[pd.DataFrame, list[Path]]:
    files = sorted(p for p in input_dir.rglob("*.csv") if p.is_file())
    if not files:
        raise BadData(f"no .csv files under {input_dir}")
    frames = []
    for path in files:
        try:
            frames.append(pd.read_csv(path))
        except pd.errors.EmptyDataError:
            raise BadData(f"{path.name} is empty") from None
    data = pd.concat(frames, ignore_index=True)
    if data.empty:
        raise BadData(f"the input has a header but no rows ({', '.join(p.name for p in files)})")
    if label_column not in data.columns:
        raise BadData(f"label column '{label_column}' is missing; columns are: {', '.join(map(str, data.columns))}")
    labels = data[label_column].dropna().unique()
    if len(labels) != 2:
        raise BadData(f"label column '{label_column}' must have exactly 2 classes, found {len(labels)}: {sorted(map(str, labels))[:5]}")
    non_numeric = [c for c in data.columns if c != label_column and not pd.api.types.is_numeric_dtype(data[c])]
    if non_numeric:
        raise BadData(f"feature columns must be numeric; these are not: {', '.join(non_numeric)}")
    return data.dropna(subset=[label_column]), files


def split(data: pd.DataFrame, label_column: str) -> dict[str, pd.DataFrame]:
    # The label goes first: that is what the training and evaluation steps expect.
    data = data[[label_column, *[c for c in data.columns if c != label_column]]]
    train, rest = train_test_split(data, train_size=SPLITS["train"], stratify=data[label_column], random_state=RANDOM_STATE)
    validation, test = train_test_split(rest, test_size=0.5, stratify=rest[label_column], random_state=RANDOM_STATE)
    return {"train": train, "validation": validation, "test": test}


def manifest(files: list[Path], input_dir: Path, input_uri: str) -> dict:
    entries = [
        {"file": str(path.relative_to(input_dir)), "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        for path in files
    ]
    if input_uri:
        _add_s3_versions(entries, input_uri)
    return {"input_uri": input_uri, "objects": entries}


def _add_s3_versions(entries: list[dict], input_uri: str) -> None:
    import boto3  # only in the container (or a test with moto): the local split needs no AWS

    bucket, _, prefix = input_uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    for entry in entries:
        key = f"{prefix.rstrip('/')}/{entry['file']}" if prefix else entry["file"]
        head = s3.head_object(Bucket=bucket, Key=key)
        entry.update(s3_uri=f"s3://{bucket}/{key}", version_id=head.get("VersionId", "null"), etag=head["ETag"].strip('"'))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    input_dir, output_dir = Path(args.input_dir), Path(args.output_dir)
    try:
        data, files = load(input_dir, args.label_column)
        parts = split(data, args.label_column)
    except BadData as error:
        print(f"Preprocess failed: {error}", file=sys.stderr)
        return 1
    for name, frame in parts.items():
        (output_dir / name).mkdir(parents=True, exist_ok=True)
        frame.to_csv(output_dir / name / f"{name}.csv", index=False)
    (output_dir / "manifest").mkdir(parents=True, exist_ok=True)
    (output_dir / "manifest" / "manifest.json").write_text(json.dumps(manifest(files, input_dir, args.input_uri), indent=2))
    print(f"Read {len(data)} rows from {len(files)} file(s): " + ", ".join(f"{k}={len(v)}" for k, v in parts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

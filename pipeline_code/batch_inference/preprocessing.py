"""Batch preprocessing: check each input CSV and keep the columns the model scores, one output file per input.

Runs as a script-mode Processing Job on the SageMaker scikit-learn image (``python3 preprocessing.py``); every
container path is an argument with the SageMaker default, so the same script runs locally. The input is
distributed ShardedByS3Key, so with several instances each one sees some of the files: every input file
becomes ``<input stem>.csv`` in the output, and no two instances ever write the same name.

Features are prepared the way the training pipeline's preprocess step prepared them: numeric columns,
everything but the label. The label column may be present (it is dropped); missing feature values are kept,
as training kept them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


class BadInput(ValueError):
    """An input file cannot be scored; the message names the file and says why."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument("--label-column", default="target")
    # SageMaker writes the job's hosts here; locally it is absent, which means one instance.
    parser.add_argument("--resource-config", default="/opt/ml/config/resourceconfig.json")
    return parser.parse_args(argv)


def instance_count(resource_config: Path) -> int:
    if not resource_config.is_file():
        return 1
    return len(json.loads(resource_config.read_text()).get("hosts", [])) or 1


def input_files(input_dir: Path) -> list[Path]:
    files = sorted(path for path in input_dir.rglob("*.csv") if path.is_file())
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(path.stem, []).append(path)
    clashes = {stem: paths for stem, paths in by_stem.items() if len(paths) > 1}
    if clashes:
        stem, paths = next(iter(clashes.items()))
        names = " and ".join(str(path.relative_to(input_dir)) for path in paths)
        raise BadInput(f"{names} would both be written as {stem}.csv; give input files distinct names")
    return files


def prepare(path: Path, label_column: str) -> pd.DataFrame:
    try:
        data = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise BadInput(f"{path.name} is empty") from None
    if data.empty:
        raise BadInput(f"{path.name} has a header but no rows")
    features = data.drop(columns=[label_column], errors="ignore")
    if features.columns.empty:
        raise BadInput(f"{path.name} has no feature columns, only '{label_column}'")
    non_numeric = [str(column) for column in features.columns if not pd.api.types.is_numeric_dtype(features[column])]
    if non_numeric:
        raise BadInput(f"{path.name}: feature columns must be numeric; these are not: {', '.join(non_numeric)}")
    return features


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    input_dir, output_dir = Path(args.input_dir), Path(args.output_dir)
    try:
        files = input_files(input_dir)
        if not files and instance_count(Path(args.resource_config)) > 1:
            # More instances than files: ShardedByS3Key leaves some instances without any.
            print(f"No .csv files under {input_dir} on this instance: the other instances have the input's files")
            return 0
        if not files:
            raise BadInput(f"no .csv files under {input_dir}")
        prepared = {path: prepare(path, args.label_column) for path in files}
    except BadInput as error:
        print(f"Preprocessing failed: {error}", file=sys.stderr)
        return 1
    output_dir.mkdir(parents=True, exist_ok=True)
    for path, features in prepared.items():
        features.to_csv(output_dir / f"{path.stem}.csv", index=False)
    rows = sum(len(features) for features in prepared.values())
    print(f"Prepared {rows} rows from {len(prepared)} file(s): " + ", ".join(f"{path.stem}.csv" for path in prepared))
    return 0


if __name__ == "__main__":
    sys.exit(main())

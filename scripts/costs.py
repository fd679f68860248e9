#!/usr/bin/env python3
"""`make costs`: each environment's monthly cost while nothing runs, from the templates `make synth` wrote to
cdk.out and the price table in costs/prices.yaml; and what serving a model would cost, from config."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import ENVIRONMENTS, load_environment  # noqa: E402
from costs import idle_lines, instance_serving_monthly, price_table, read_templates, serverless_serving_monthly  # noqa: E402

# The dev serving estimate: a handful of test requests a day.
DEV_REQUESTS_PER_MONTH = 3000
SECONDS_PER_REQUEST = 0.2
SERVERLESS_MEMORY_GB = 2
PAYLOAD_KB = 10


def main(outdir: Path) -> None:
    table = price_table()
    print(f"Monthly cost while nothing runs, {table['region']} list prices of {table['as_of']}, {table['hours_per_month']} hours a month (USD)")
    for environment in ENVIRONMENTS:
        assembly = outdir / f"assembly-{environment}"
        if not assembly.is_dir():
            sys.exit(f"{assembly} is missing: run `make synth` (every environment) first")
        lines = idle_lines(read_templates(assembly))
        print(f"\n{environment}: {sum(line.monthly for line in lines):.2f}")
        for line in lines:
            print(f"  {line.monthly:8.2f}  {line.item} ({line.units})")
        # Each model's endpoint bills from its first release on, with the model's own deployment settings.
        for model in load_environment(ROOT / "config", environment).model_units().values():
            deployment = model.deployment
            instances = max(deployment.initial_instance_count, deployment.autoscaling.min_capacity)
            print(
                f"  once model {model.name} is deployed: {instance_serving_monthly(deployment.instance_type, instances):.2f} "
                f"for {instances} x {deployment.instance_type} serving all month"
            )
    serverless = serverless_serving_monthly(DEV_REQUESTS_PER_MONTH, SECONDS_PER_REQUEST, SERVERLESS_MEMORY_GB, PAYLOAD_KB)
    print(
        f"\ndev serving on a serverless endpoint (estimate; serverless serving lands later): {serverless:.2f} a month for "
        f"{DEV_REQUESTS_PER_MONTH} requests of {SECONDS_PER_REQUEST} s in {SERVERLESS_MEMORY_GB} GB with {PAYLOAD_KB} KB each"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "cdk.out")

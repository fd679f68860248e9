#!/usr/bin/env python3
"""`make costs`: each environment's monthly cost while nothing runs, from the templates `make synth` wrote to
cdk.out and the price table in costs/prices.yaml; and what serving a model would cost, from config."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import ENVIRONMENTS, load_environment  # noqa: E402
from config.settings import Deployment  # noqa: E402
from costs import idle_lines, instance_serving_monthly, price_table, read_templates, serverless_serving_monthly  # noqa: E402

# The request volume serverless serving is priced at: a hundred test requests a day, each running 0.2 s and
# moving 10 KB; the memory is the environment's deployment.serving.memory_size_mb.
REQUESTS_PER_MONTH = 3000
SECONDS_PER_REQUEST = 0.2
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
            print(serving_line(model.name, model.deployment))


def serving_line(model: str, deployment: Deployment) -> str:
    """What serving model `model` adds a month: serverless at the stated request volume, next to what the same
    environment would pay on instances; or the instances serving all month."""
    instances = max(deployment.initial_instance_count, deployment.autoscaling.min_capacity)
    on_instances = f"{instance_serving_monthly(deployment.instance_type, instances):.2f} for {instances} x {deployment.instance_type} serving all month"
    serving = deployment.serving
    if serving.mode != "serverless":
        return f"  once model {model} is deployed: {on_instances}"
    memory_gb = serving.memory_size_mb / 1024
    monthly = serverless_serving_monthly(REQUESTS_PER_MONTH, SECONDS_PER_REQUEST, memory_gb, PAYLOAD_KB)
    provisioned = (
        f"; plus {serving.provisioned_concurrency} provisioned concurrency, billed while the endpoint exists and not in the price table"
        if serving.provisioned_concurrency
        else ""
    )
    return (
        f"  once model {model} is deployed: {monthly:.2f} serverless ({serving.memory_size_mb} MB) for {REQUESTS_PER_MONTH} requests a month "
        f"of {SECONDS_PER_REQUEST} s with {PAYLOAD_KB} KB each{provisioned}; on instances it would be {on_instances}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "cdk.out")

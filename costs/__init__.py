"""What an environment costs while nothing runs, from its synthesized templates and the price table in
costs/prices.yaml; and what serving a model costs, from its config. Reads JSON templates only: no aws-cdk-lib."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

PRICES_FILE = Path(__file__).resolve().parent / "prices.yaml"


@functools.cache
def price_table() -> dict:
    return yaml.safe_load(PRICES_FILE.read_text())


def listed_types() -> set[str]:
    table = price_table()
    return set(table["billed_while_idle"]) | set(table["free_while_idle"])


@dataclass(frozen=True)
class Line:
    """One billed item of an environment: what, how many units, and its monthly cost in USD."""

    item: str
    units: str
    monthly: float


def _monthly(hourly: float) -> float:
    return hourly * price_table()["hours_per_month"]


def _runs_per_month(schedule: str) -> int:
    """Runs a month of a monitoring schedule's cron(...) expression: hourly, daily or anything rarer."""
    _, hour, *_ = re.fullmatch(r"cron\((.*)\)", schedule).group(1).split()
    if hour in ("*", "0/1"):
        return 730
    return 30


def _monitoring_instance_type(template: dict, schedule: dict) -> str:
    """The instance type the data-quality job definition of `schedule` (each model's endpoint has its own)
    runs its processing jobs on."""
    referenced = json.dumps(schedule)
    (definition,) = [
        r
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::SageMaker::DataQualityJobDefinition" and f'"{logical_id}"' in referenced
    ]
    return definition["Properties"]["JobResources"]["ClusterConfig"]["InstanceType"]


def idle_lines(templates: dict[str, dict]) -> list[Line]:
    """The environment's billed items while nothing runs, from its templates (stack name -> template)."""
    billed = price_table()["billed_while_idle"]
    lines = []
    for stack, template in sorted(templates.items()):
        for logical_id, resource in sorted(template["Resources"].items()):
            kind, properties = resource["Type"], resource.get("Properties", {})
            price = billed.get(kind)
            if price is None:
                continue
            if kind == "AWS::EC2::VPCEndpoint":
                if properties.get("VpcEndpointType") != "Interface":
                    continue
                zones = len(properties["SubnetIds"])
                lines.append(Line(f"{stack}: interface endpoint {logical_id}", f"{zones} zone(s)", zones * _monthly(price["price"])))
            elif kind == "AWS::SageMaker::MlflowTrackingServer":
                size = properties.get("TrackingServerSize", "Small")
                lines.append(Line(f"{stack}: MLflow tracking server ({size})", "1 server", _monthly(price["price_by_size"][size])))
            elif kind == "AWS::SageMaker::MonitoringSchedule":
                runs = _runs_per_month(properties["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"])
                instance_hour = price["price_per_instance_hour"][_monitoring_instance_type(template, properties)]
                monthly = runs * price["estimated_hours_per_run"] * instance_hour
                lines.append(Line(f"{stack}: monitoring schedule {logical_id} (estimate)", f"{runs} runs", monthly))
            elif price["per"].endswith("hour"):
                lines.append(Line(f"{stack}: {kind.split('::')[-1]} {logical_id}", "1", _monthly(price["price"])))
            else:
                lines.append(Line(f"{stack}: {kind.split('::')[-1]} {logical_id}", "1", price["price"]))
    return lines


def unlisted_types(template: dict) -> set[str]:
    """Resource types in `template` that the price table neither prices nor lists as free while idle."""
    return {resource["Type"] for resource in template["Resources"].values()} - listed_types()


def instance_serving_monthly(instance_type: str, instances: int) -> float:
    return instances * _monthly(price_table()["serving"]["instance_hour"][instance_type])


def serverless_serving_monthly(requests: int, seconds_per_request: float, memory_gb: float, payload_kb: float) -> float:
    """Serverless inference for `requests` a month, each running `seconds_per_request` in `memory_gb` and moving
    `payload_kb` in and out: an estimate from list prices."""
    serving = price_table()["serving"]
    compute = requests * seconds_per_request * memory_gb * serving["serverless_gb_second"]
    data = requests * payload_kb / (1024 * 1024) * serving["serverless_data_gb"]
    return compute + data


def read_templates(assembly: Path) -> dict[str, dict]:
    """Stack name -> template, for the cloud assembly of one environment (cdk.out/assembly-<env>)."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    return {
        artifact["properties"]["stackName"]: json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    }

"""The batch inference workflow as `cdk synth` produces it, running in moto with a model registry and
processing jobs around it.

`synthesized_batch_workflow()` synthesizes the dev environment's batch-inference stack from a copy of
config/ with `batch_inference` overrides; `BatchWorld` resolves the template's references to made-up
physical names, creates what the definition talks to (the model package group and its packages) and runs
executions of that definition, with every Wait state's pause set to zero (moto really sleeps). Used by
the behaviour tests and by `make bench`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moto import mock_aws

from config.naming import model_package_group_name
from tests.behaviour import sfn_harness
from tests.behaviour.endpoint_shim import endpoint_shim
from tests.behaviour.processing_job_shim import ProcessingJobShim, processing_job_shim
from tests.synth import environment_config, synthesize_dev_with

DEV = environment_config("dev")
REGION = DEV.region
GROUP = f"{DEV.prefix}-models"
# Each model's group by the model's name, the one keeping the environment's names (GROUP) first.
GROUPS = {name: model_package_group_name(unit.stem) for name, unit in DEV.model_units().items()}
STATE_MACHINE = f"{DEV.prefix}-batch-inference"
ARTIFACTS_BUCKET = f"{DEV.prefix}-artifacts"
KEY_ARN = f"arn:aws:kms:{REGION}:{DEV.account}:key/0a1b2c3d-0000-4000-8000-000000000000"
REPOSITORY = f"{DEV.prefix}-batch-inference-images"
PROCESSING_ROLE = f"arn:aws:iam::{DEV.account}:role/{DEV.prefix}-batch-processing"
INPUT_URI = f"s3://{DEV.prefix}-training-data/batch/2026-11-25/"
OUTPUT_URI = f"s3://{ARTIFACTS_BUCKET}/batch-inference/output/2026-11-25"
WORK_URI = f"s3://{ARTIFACTS_BUCKET}/batch-inference/work/"
IMAGE_TAG = "4f2c1e9"


def synthesized_batch_workflow(workdir: Path, **batch_inference: object) -> dict:
    """The dev batch-inference stack's template, synthesized with `batch_inference` overrides (or copied from
    the same synth made before)."""

    def change(dev: dict) -> None:
        dev.setdefault("batch_inference", {}).update(batch_inference)

    return synthesize_dev_with(workdir, change, reuse=True).template("dev", "batch-inference")


def _output_value(output_name: str) -> str:
    """What a storage stack output the template imports stands for, recognised by its generated name."""
    if "ArtifactsBucket" in output_name and output_name.startswith("PublishOutputRef"):
        return ARTIFACTS_BUCKET
    if "BatchInferenceImages" in output_name and output_name.startswith("PublishOutputRef"):
        return REPOSITORY
    if re.search(r"FnGetAttKey[0-9A-F]+Arn", output_name):
        return KEY_ARN
    return f"from-{output_name}"


class BatchWorld:
    def __init__(self, template: dict, shim: ProcessingJobShim, retry_waits: list[float], state_waits: dict[str, list[int]]) -> None:
        self.shim = shim
        self.retry_waits = retry_waits
        self.state_waits = state_waits
        self.sagemaker = sfn_harness.world_client("sagemaker", REGION)
        self.sfn = sfn_harness.world_client("stepfunctions", REGION)
        for group in GROUPS.values():
            self.sagemaker.create_model_package_group(ModelPackageGroupName=group)
        self.definition = _without_pauses(sfn_harness.state_machine_definition(template, self._refs(template), name=STATE_MACHINE))
        self.state_machine = sfn_harness.create_state_machine(self.sfn, self.definition, STATE_MACHINE)
        self.repository_uri = f"{DEV.account}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}"
        self._names = (f"batch-{n}" for n in itertools.count(1))
        self._versions = itertools.count(1)

    # -- the model registry ------------------------------------------------------------------

    def register(self, status: str = "Approved", group: str = GROUP) -> tuple[str, str]:
        """A new model package version in `group`; returns its ARN and its model artifact's URI."""
        artifact = f"s3://{ARTIFACTS_BUCKET}/pipelines/{DEV.prefix}-training/run-{next(self._versions)}/model.tar.gz"
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3", "ModelDataUrl": artifact}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        if status != "PendingManualApproval":
            self.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)
        return arn, artifact

    # -- running the workflow ----------------------------------------------------------------

    def score(self, **input: object) -> sfn_harness.Execution:
        """Run one execution with `input` (input_uri and output_uri unless given) and wait for it to end."""
        return sfn_harness.wait(self.sfn, self.start(**input))

    def start(self, **input: object) -> str:
        return sfn_harness.start(self.sfn, self.state_machine, {"input_uri": INPUT_URI, "output_uri": OUTPUT_URI, **input}, next(self._names))

    def start_exactly(self, input: dict) -> sfn_harness.Execution:
        return sfn_harness.wait(self.sfn, sfn_harness.start(self.sfn, self.state_machine, input, next(self._names)))

    def jobs(self) -> dict[str, dict]:
        """The CreateProcessingJob requests accepted so far, by the step their name ends with (pre, infer, post)."""
        return {request["ProcessingJobName"].rsplit("-", 1)[1]: request for request in self.shim.created()}

    def _refs(self, template: dict) -> dict:
        refs: dict = {}
        for logical_id, resource in template["Resources"].items():
            arn = PROCESSING_ROLE if logical_id.startswith("ProcessingRole") and resource["Type"] == "AWS::IAM::Role" else f"arn:aws:iam::123456789012:role/{logical_id}"
            refs[logical_id] = {"Ref": logical_id, "Arn": arn}
        text = json.dumps(template)
        for output in set(part.split('"')[0] for part in text.split('"OutputName": "')[1:]):
            refs[output] = _output_value(output)
        return refs


def _without_pauses(definition: dict) -> dict:
    """The definition with every fixed pause at zero: how long it waits is no behaviour under test. (Waits of
    a computed length, such as those before retrying a throttled call, are recorded by `state_waits`.)"""
    for state in definition["States"].values():
        if state["Type"] == "Wait" and "Seconds" in state:
            state["Seconds"] = 0
    return definition


@contextmanager
def batch_world(template: dict) -> Iterator[BatchWorld]:
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        # For its Step Functions fixes: SDK task errors named as AWS names them.
        endpoint_shim(REGION),
        processing_job_shim() as shim,
        sfn_harness.retry_waits() as waits,
        sfn_harness.state_waits() as state_waits,
        sfn_harness.string_matches_as_on_aws(),
        sfn_harness.parsed_once(),
        sfn_harness.uncatchable_as_on_aws(),
    ):
        yield BatchWorld(template, shim, waits, state_waits)

"""The notify function against moto, with events shaped as SageMaker and the deployer send them.

A registered model's evaluation report is the one the training pipeline's Evaluate step writes
(`pipeline_code/training/evaluate.py`), for a forest trained on scikit-learn's bundled data.
"""

from __future__ import annotations

import datetime
import json
import re
import unicodedata

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from mlops_constructs.canary_deployer import DEPLOYMENT_EVENT
from tests.behaviour import iam_calls, sfn_harness
from tests.behaviour.deployer_world import register_model
from tests.behaviour.iam_calls import WorldNames
from tests.behaviour.notify_function import NotifyFunction, handler
from tests.behaviour.pipeline_runs import pipeline_runs
from tests.permissions import EnvironmentPolicies
from tests.sample_events import (
    alarm_state_change,
    model_package_state_change,
    monitoring_run_ended,
    pipeline_run_ended,
    workflow_run_ended,
)

REGION = "eu-west-1"
PREFIX = "mlops-dev"
GROUP = f"{PREFIX}-models"
PIPELINE = f"{PREFIX}-training"
# dev serves serverless, on the endpoint of that mode.
ENDPOINT = f"{PREFIX}-serverless"
BUCKET = "mlops-dev-artifacts-1a2b3c"
DEPLOYER = f"{PREFIX}-canary-deployer"
# dev's other model, named after itself, on the serverless endpoint of its own.
CHURN_GROUP, CHURN_ENDPOINT, CHURN_DEPLOYER = f"{PREFIX}-churn-models", f"{PREFIX}-churn-serverless", f"{PREFIX}-churn-canary-deployer"
STARTED = datetime.datetime(2026, 11, 25, 6, 0, tzinfo=datetime.UTC)
ENDED = STARTED + datetime.timedelta(minutes=14, seconds=5)


@pytest.fixture(scope="module")
def report() -> dict:
    """What the Evaluate step writes for a small forest on the breast-cancer data."""
    # Imported here, not at the top: every xdist worker imports this module to collect it, and scikit-learn
    # with pandas (about 1.5 s of imports) is needed only by the worker that runs the tests using the report.
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from pipeline_code.training.evaluate import evaluate

    data = load_breast_cancer(as_frame=True)
    frame = data.frame
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(frame[data.feature_names][:400], frame["target"][:400])
    test = frame[["target", *data.feature_names]][400:]
    return evaluate(model, list(data.feature_names), test)


class World:
    """The environment's topic, artifacts bucket, model registry, training pipeline and deployer in moto."""

    def __init__(self, runs, operations: dict) -> None:
        self.runs = runs
        self.sagemaker = sfn_harness.world_client("sagemaker", REGION)
        self.s3 = sfn_harness.world_client("s3", REGION)
        self.sfn = sfn_harness.world_client("stepfunctions", REGION)
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        self.sagemaker.create_model_package_group(ModelPackageGroupName=CHURN_GROUP)
        self.pipeline_arn, _ = [
            self.sagemaker.create_pipeline(
                PipelineName=name, PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}), RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline"
            )["PipelineArn"]
            for name in (PIPELINE, f"{PREFIX}-churn")
        ]
        # The deployer's interface as the digest reads it: input ModelPackageArn; Fail with an error and cause when told to.
        deployer = {
            "StartAt": "Outcome",
            "States": {
                "Outcome": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "IsPresent": True, "Next": "Rolled back"}], "Default": "Promoted"},
                "Rolled back": {"Type": "Fail", "Error": "CanaryRolledBack", "Cause": "alarm mlops-dev-serverless-green-5xx is in ALARM"},
                "Promoted": {"Type": "Succeed"},
            },
        }
        self.deployer = sfn_harness.create_state_machine(self.sfn, deployer, DEPLOYER)
        self.churn_deployer = sfn_harness.create_state_machine(self.sfn, deployer, CHURN_DEPLOYER)
        topic = sfn_harness.world_client("sns", REGION).create_topic(Name=f"{PREFIX}-notifications")["TopicArn"]
        # The environment dev's operations stack gives the function; the test's world has its own topic and deployer.
        other_models = [{"group": CHURN_GROUP, "deployer": self.churn_deployer, "endpoint": CHURN_ENDPOINT}]
        dev_other_models = json.loads(NotifyFunction.from_template(operations, REGION, topic).environment["OTHER_MODELS"])
        assert [(m["group"], m["endpoint"]) for m in dev_other_models] == [(CHURN_GROUP, CHURN_ENDPOINT)], "dev's other model is not the one these tests use"
        self.notify = NotifyFunction.from_template(
            operations, REGION, topic, DEPLOYER_ARN=self.deployer, OTHER_MODELS=json.dumps(other_models), TOP_FEATURES="3"
        )
        assumed = {
            "PREFIX": PREFIX,
            "PIPELINES": json.dumps([f"{PREFIX}-churn", PIPELINE], separators=(",", ":")),
            "MODEL_PACKAGE_GROUP": GROUP,
            "ENDPOINT_NAME": ENDPOINT,
        }
        assert {name: self.notify.environment[name] for name in assumed} == assumed, "the names these tests use are not dev's"

    def register(self, report: dict | bytes | None, status: str = "PendingManualApproval") -> str:
        """A model version as the pipeline registers it, with its evaluation report in S3 (None: no metrics)."""
        metrics = {}
        if report is not None:
            key = f"pipelines/{PIPELINE}/exec-{len(self.s3.list_objects_v2(Bucket=BUCKET).get('Contents', []))}/Evaluate/evaluation/evaluation.json"
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=report if isinstance(report, bytes) else json.dumps(report).encode())
            metrics = {"ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{key}"}}}}
        return register_model(self.sagemaker, GROUP, status, **metrics)

    def run(self, status: str, steps: list[dict], started: datetime.datetime = STARTED) -> str:
        arn = self.sagemaker.start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
        self.runs.end(arn, status, steps, started=started, ended=started + (ENDED - STARTED))
        return arn

    def told(self, event: dict):
        self.notify(event)
        return self.notify.received()[-1]


@pytest.fixture(scope="module")
def operations(synthesized) -> dict:
    return synthesized.template("dev", "operations")


@pytest.fixture
def world(aws_env, operations):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), pipeline_runs(ACCOUNT, REGION) as runs, sfn_harness.parsed_once():
        yield World(runs, operations)


def pipeline_event(world: World, execution_arn: str, status: str, pipeline_arn: str | None = None) -> dict:
    return pipeline_run_ended(pipeline_arn or world.pipeline_arn, execution_arn, status)


def deployer_event(world: World, package_arn: str, event: str, **detail: str) -> dict:
    """What the canary deployer puts on the default bus (Step Functions adds its ARNs to the resources)."""
    execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{DEPLOYER}:0b1c2d3e"
    return {
        "version": "0",
        "id": "a1b2c3d4-0000-4000-8000-000000000001",
        "detail-type": DEPLOYMENT_EVENT,
        "source": DEPLOYER,
        "account": ACCOUNT,
        "time": "2026-11-25T07:00:00Z",
        "region": REGION,
        "resources": [world.deployer, execution],
        "detail": {"endpoint": ENDPOINT, "modelPackageArn": package_arn, "execution": execution, "event": event, **detail},
    }


REGISTERED = [
    {"StepName": "Preprocess", "StepStatus": "Succeeded"},
    {"StepName": "Train", "StepStatus": "Succeeded"},
    {"StepName": "Evaluate", "StepStatus": "Succeeded"},
    {"StepName": "CheckAuc", "StepStatus": "Succeeded", "Metadata": {"Condition": {"Outcome": "True"}}},
]


def _quality(report: dict) -> tuple[str, str, list[str]]:
    metrics = report["binary_classification_metrics"]
    return f"AUC {metrics['auc']['value']:.3f}", f"accuracy {metrics['accuracy']['value']:.3f}", [f["feature"] for f in report["feature_importances"]]


# -- training runs ---------------------------------------------------------------------------------


def test_succeeded_run_gives_the_registered_models_metrics_and_top_features(world, report):
    package = world.register(report)
    run = world.run("Succeeded", [*REGISTERED, {"StepName": "Register-RegisterModel", "StepStatus": "Succeeded", "Metadata": {"RegisterModel": {"Arn": package}}}])

    told = world.told(pipeline_event(world, run, "Succeeded"))

    auc, accuracy, features = _quality(report)
    assert told.subject == f"{PIPELINE}: run {run.rsplit('/', 1)[-1]} succeeded"
    assert f"Pipeline {PIPELINE} finished run execution-1795586400000 successfully after 14 min 5 s." in told.text
    assert f"It registered model version 1 of {GROUP}, which awaits review." in told.text
    assert f"{auc} and {accuracy} on {report['test_rows']} held-out rows" in told.text
    assert f"Most important features: {features[0]} (" in told.text and features[2] in told.text and features[3] not in told.text
    assert f"Pipeline run: https://{REGION}.console.aws.amazon.com/sagemaker/home?region={REGION}#/pipelines/{PIPELINE}/executions/{run.rsplit('/', 1)[-1]}" in told.text
    assert f"Model version 1: https://{REGION}.console.aws.amazon.com/sagemaker/home?region={REGION}#/model-packages/{GROUP}/1" in told.text


def test_failed_run_gives_the_failed_steps_reason(world):
    run = world.run(
        "Failed",
        [*REGISTERED[:3], {"StepName": "CheckAuc", "StepStatus": "Succeeded"}, {"StepName": "AucBelowThreshold", "StepStatus": "Failed", "FailureReason": "Model AUC 0.61 is below the threshold 0.8"}],
    )

    told = world.told(pipeline_event(world, run, "Failed"))

    assert told.subject == f"{PIPELINE}: run {run.rsplit('/', 1)[-1]} failed"
    assert "Why: step AucBelowThreshold failed: Model AUC 0.61 is below the threshold 0.8" in told.text
    assert "One or multiple steps failed" not in told.text


def test_failed_run_whose_steps_give_no_reason_gives_the_runs_own(world):
    run = world.run("Failed", [{"StepName": "Preprocess", "StepStatus": "Failed"}])

    told = world.told(pipeline_event(world, run, "Failed"))

    assert "Why: Step failure: One or multiple steps failed." in told.text


def test_stopped_run_says_someone_stopped_it(world):
    run = world.run("Stopped", REGISTERED[:2])

    told = world.told(pipeline_event(world, run, "Stopped"))

    assert told.subject == f"{PIPELINE}: run {run.rsplit('/', 1)[-1]} stopped"
    assert "ended Stopped after 14 min 5 s: someone stopped it" in told.text


def test_succeeded_run_that_registered_nothing_says_so(world):
    run = world.run("Succeeded", REGISTERED)

    assert "It registered no model." in world.told(pipeline_event(world, run, "Succeeded")).text


# -- model reviews -----------------------------------------------------------------------------------


def test_registered_model_awaits_review_with_its_metrics(world, report):
    package = world.register(report)

    told = world.told(model_package_state_change(package, "PendingManualApproval"))

    auc, accuracy, _ = _quality(report)
    assert told.subject == f"{GROUP}: version 1 registered, awaiting review"
    assert "awaits review: approving it deploys it" in told.text
    assert auc in told.text and accuracy in told.text


def test_approved_model_says_where_it_is_deployed(world, report):
    package = world.register(report, status="Approved")

    told = world.told(model_package_state_change(package, "Approved"))

    assert told.subject == f"{GROUP}: version 1 approved"
    assert f"The canary deployer deploys it to endpoint {ENDPOINT} if it is newer than the version serving there" in told.text
    assert _quality(report)[0] in told.text


def test_an_approved_version_of_another_model_names_that_models_endpoint(world, report):
    package = register_model(world.sagemaker, CHURN_GROUP, "Approved")

    told = world.told(model_package_state_change(package, "Approved"))

    assert told.subject == f"{CHURN_GROUP}: version 1 approved"
    assert f"deploys it to endpoint {CHURN_ENDPOINT} if it is newer" in told.text


def test_rejected_model_gives_the_reviewers_note(world, report):
    package = world.register(report, status="Rejected")

    told = world.told(model_package_state_change(package, "Rejected", ApprovalDescription="recall on the minority class is too low"))

    assert told.subject == f"{GROUP}: version 1 rejected"
    assert "it will not be deployed. The reviewer wrote: recall on the minority class is too low" in told.text


def test_missing_report_still_sends_the_message_and_says_so(world, report):
    package = world.register(report)
    uri = world.sagemaker.describe_model_package(ModelPackageName=package)["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    world.s3.delete_object(Bucket=BUCKET, Key=uri.split(f"{BUCKET}/", 1)[1])

    told = world.told(model_package_state_change(package, "PendingManualApproval"))

    assert told.subject == f"{GROUP}: version 1 registered, awaiting review"
    assert f"Its evaluation report {uri} could not be read (NoSuchKey), so its quality is unknown." in told.text


@pytest.mark.parametrize(
    "body",
    [b"{not json", json.dumps({"feature_importances": []}).encode(), json.dumps({"binary_classification_metrics": {"auc": {"value": "high"}, "accuracy": {"value": 0.9}}}).encode()],
    ids=["not-json", "no-metrics", "auc-not-a-number"],
)
def test_malformed_report_still_sends_the_message_and_says_so(world, body):
    package = world.register(body)

    told = world.told(model_package_state_change(package, "PendingManualApproval"))

    assert "is malformed (" in told.text and "so its quality is unknown" in told.text


def test_model_registered_without_metrics_says_its_quality_is_unknown(world):
    package = world.register(None)

    assert "No evaluation report is attached to this model version" in world.told(model_package_state_change(package, "PendingManualApproval")).text


# -- the deployer's events, in the same format ---------------------------------------------------------


def test_deployer_rollback_gives_the_reason_the_model_and_both_links(world, report):
    package = world.register(report, status="Approved")

    told = world.told(deployer_event(world, package, "rolled back", detail="alarm mlops-dev-serverless-green-5xx is in ALARM"))

    assert told.subject == f"{ENDPOINT}: version 1 rolled back"
    assert "Why: alarm mlops-dev-serverless-green-5xx is in ALARM" in told.text
    assert _quality(report)[0] in told.text
    assert f"Deployment run: https://{REGION}.console.aws.amazon.com/states/home?region={REGION}#/v2/executions/details/arn:aws:states:{REGION}:{ACCOUNT}:execution:{DEPLOYER}:0b1c2d3e" in told.text


def test_deployer_event_for_a_package_that_cannot_be_described_still_goes_out(world):
    missing = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/999"

    told = world.told(deployer_event(world, missing, "deployment failed", detail="checking the package failed"))

    assert told.subject == f"{ENDPOINT}: deployment of version 999 failed"
    assert "could not be described" in told.text


# -- alarms and data-quality runs, in the same format -------------------------------------------------


def variant_alarm(state: str, previous: str, *, suffix: str = "5xx", datapoints: list[float] | None = None) -> dict:
    """A state change of one of the deployment stack's per-variant alarms on green."""
    metric_name, stat, threshold, description = {
        "5xx": ("Invocation5XXErrors", "Sum", 0.0, f"model errors (HTTP 5XX) of variant green of {ENDPOINT} above 0 in a 60 s period"),
        "latency": ("ModelLatency", "Average", 500000.0, f"average model latency of variant green of {ENDPOINT} above 500 ms in a 60 s period"),
    }[suffix]
    return alarm_state_change(
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ENDPOINT}-green-{suffix}",
        state,
        previous,
        metric={
            "metric": {"dimensions": {"EndpointName": ENDPOINT, "VariantName": "green"}, "name": metric_name, "namespace": "AWS/SageMaker"},
            "period": 60,
            "stat": stat,
        },
        description=description,
        threshold=threshold,
        datapoints=datapoints or ([7.0] if state == "ALARM" else [0.0]),
    )


def test_variant_alarm_in_alarm_names_the_endpoint_variant_threshold_values_and_reason(world):
    told = world.told(variant_alarm("ALARM", "OK"))

    assert told.subject == f"Alarm {ENDPOINT}-green-5xx is in ALARM"
    assert f"Alarm {ENDPOINT}-green-5xx on variant green of endpoint {ENDPOINT} went from OK to ALARM at 2026-11-25 07:04:40 UTC." in told.text
    assert f"What it watches: model errors (HTTP 5XX) of variant green of {ENDPOINT} above 0 in a 60 s period." in told.text
    assert "Invocation5XXErrors (Sum per 60 s): threshold 0, latest value 7." in told.text
    assert "Why: Threshold Crossed: 1 out of the last 1 datapoints [7.0 (25/11/26 07:03:00)] was greater than the threshold (0.0)" in told.text
    assert "A deployment that is moving traffic to variant green rolls back on this alarm." in told.text
    assert f"Alarm: https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#alarmsV2:alarm/{ENDPOINT}-green-5xx" in told.text
    assert f"Endpoint {ENDPOINT}: https://{REGION}.console.aws.amazon.com/sagemaker/home?region={REGION}#/endpoints/{ENDPOINT}" in told.text


def test_variant_alarm_back_to_ok_says_so_without_a_rollback_warning(world):
    told = world.told(variant_alarm("OK", "ALARM"))

    assert told.subject == f"Alarm {ENDPOINT}-green-5xx is OK again"
    assert "went from ALARM to OK" in told.text
    assert "latest value 0." in told.text
    assert "rolls back" not in told.text


def test_latency_alarm_gives_its_threshold_and_values_in_milliseconds(world):
    told = world.told(variant_alarm("ALARM", "OK", suffix="latency", datapoints=[812345.0]))

    assert "ModelLatency (Average per 60 s): threshold 500 ms, latest value 812.345 ms." in told.text


def test_data_quality_alarm_names_the_endpoint_and_what_it_counts(world):
    told = world.told(
        alarm_state_change(
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ENDPOINT}-data-quality",
            "ALARM",
            "OK",
            metric={"metric": {"dimensions": {"RuleName": f"{PREFIX}-data-quality-violations"}, "name": "TriggeredRules", "namespace": "AWS/Events"}, "period": 3600, "stat": "Sum"},
            description=f"data-quality violations that Model Monitor finds in {ENDPOINT}'s captured traffic",
            threshold=0.0,
            datapoints=[1.0],
        )
    )

    assert told.subject == f"Alarm {ENDPOINT}-data-quality is in ALARM"
    assert f"Alarm {ENDPOINT}-data-quality of endpoint {ENDPOINT} went from OK to ALARM" in told.text
    assert f"What it watches: data-quality violations that Model Monitor finds in {ENDPOINT}'s captured traffic." in told.text
    assert "TriggeredRules (Sum per 3600 s): threshold 0, latest value 1." in told.text
    assert "rolls back" not in told.text
    assert f"#/endpoints/{ENDPOINT}" in told.text


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e["detail"].pop("configuration"),
        lambda e: e["detail"]["state"].update(reasonData="{not json"),
        lambda e: e["detail"]["state"].pop("reasonData"),
        lambda e: e["detail"].pop("previousState"),
        lambda e: e.pop("resources"),
        lambda e: e["detail"]["configuration"].update(metrics=[{"id": "e1", "expression": "SUM(METRICS())", "returnData": True}]),
        lambda e: e["detail"]["state"].update(timestamp="yesterday"),
    ],
    ids=["no-configuration", "reason-data-not-json", "no-reason-data", "no-previous-state", "no-resources", "metric-math", "odd-timestamp"],
)
def test_alarm_event_with_missing_or_malformed_fields_still_sends_the_message(world, damage):
    event = variant_alarm("ALARM", "OK")
    damage(event)

    told = world.told(event)

    assert told.subject == f"Alarm {ENDPOINT}-green-5xx is in ALARM"
    assert f"Alarm {ENDPOINT}-green-5xx" in told.text and "to ALARM" in told.text
    assert f"Alarm: https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#alarmsV2:alarm/{ENDPOINT}-green-5xx" in told.text


def test_alarm_event_without_a_state_still_sends_the_message(world):
    event = variant_alarm("ALARM", "OK")
    del event["detail"]["state"]

    told = world.told(event)

    assert told.subject == f"Alarm {ENDPOINT}-green-5xx changed to an unknown state"
    assert "went from OK to an unknown state" in told.text and "threshold unknown" in told.text


def test_data_quality_run_with_violations_gives_its_exit_message_and_report(world):
    schedule = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:monitoring-schedule/{PREFIX}-data-quality"
    reports = f"s3://{BUCKET}/monitoring/{ENDPOINT}/"

    told = world.told(monitoring_run_ended(schedule, "CompletedWithViolations: Job completed successfully with 3 violations.", reports))

    assert told.subject == f"{ENDPOINT}: data-quality violations found"
    assert f"run model-monitoring-202611250100-0a1b2c3d of schedule {PREFIX}-data-quality found data-quality violations in the traffic endpoint {ENDPOINT} captured" in told.text
    assert "What it reported: CompletedWithViolations: Job completed successfully with 3 violations." in told.text
    assert f"is under {reports}2026/11/25/01." in told.text
    assert "#/processing-jobs/model-monitoring-202611250100-0a1b2c3d" in told.text


# -- batch inference runs -----------------------------------------------------------------------------

BATCH = f"{PREFIX}-batch-inference"
BATCH_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{BATCH}"


@pytest.mark.parametrize(("status", "ending"), [("FAILED", "failed"), ("TIMED_OUT", "timed out"), ("ABORTED", "was stopped")])
def test_batch_run_that_did_not_succeed_says_how_it_ended_and_why(world, status, ending):
    event = workflow_run_ended(BATCH_ARN, "nightly-2026-11-25", status, input={"input_uri": "s3://in/2026-11-25/"}, error="InferFailed", cause="predict.py: column age is missing")

    told = world.told(event)

    assert told.subject == f"{BATCH}: run nightly-2026-11-25 {ending}"
    assert f"Batch inference run nightly-2026-11-25 of {BATCH} {ending} after 14 min 5 s." in told.text
    assert "Why: InferFailed: predict.py: column age is missing" in told.text
    assert "It was started with input_uri s3://in/2026-11-25/." in told.text
    assert f"#/v2/executions/details/{BATCH_ARN.replace(':stateMachine:', ':execution:')}:nightly-2026-11-25" in told.text


def test_batch_run_event_without_its_reason_reads_it_from_the_run(world):
    workflow = sfn_harness.create_state_machine(
        world.sfn, {"StartAt": "Fail", "States": {"Fail": {"Type": "Fail", "Error": "PreprocessFailed", "Cause": "no CSV files under the input"}}}, BATCH
    )
    failed = sfn_harness.run(world.sfn, workflow, {}, "run-1")

    told = world.told(workflow_run_ended(workflow, "run-1", "FAILED", input={}))

    assert failed.status == "FAILED"
    assert "Why: PreprocessFailed: no CSV files under the input" in told.text


def test_dead_letter_alarm_says_which_queue_holds_messages_and_what_to_do(world):
    name = f"{PREFIX}-approval-dead-letters"
    event = alarm_state_change(
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
        "ALARM",
        "OK",
        metric={"metric": {"dimensions": {"QueueName": "dev-deployment-ApprovalDeadLetters"}, "name": "ApproximateNumberOfMessagesVisible", "namespace": "AWS/SQS"}, "period": 300, "stat": "Maximum"},
        description="messages in the dead-letter queue of the rule that starts the deployer on approvals: each is an event that was never acted on",
        threshold=0.0,
        datapoints=[2.0],
    )

    told = world.told(event)

    assert told.subject == f"Alarm {name} is in ALARM"
    assert "What it watches: messages in the dead-letter queue of the rule that starts the deployer on approvals" in told.text
    assert "ApproximateNumberOfMessagesVisible (Maximum per 300 s): threshold 0, latest value 2." in told.text


# -- what every message is --------------------------------------------------------------------------


def test_subject_stays_within_what_sns_accepts(world):
    long_arn = world.sagemaker.create_pipeline(
        PipelineName=f"{PREFIX}-" + "x" * 100, PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}), RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline"
    )["PipelineArn"]
    run = world.sagemaker.start_pipeline_execution(PipelineName=long_arn.rsplit("/", 1)[-1])["PipelineExecutionArn"]
    world.runs.end(run, "Succeeded", [], started=STARTED, ended=ENDED)

    subject = world.told(pipeline_event(world, run, "Succeeded", pipeline_arn=long_arn)).subject

    assert len(subject) < 100 and subject.isascii() and "\n" not in subject


def test_event_of_a_type_no_writer_knows_still_tells_people_what_arrived(world):
    told = world.told({"id": "e-1", "detail-type": "Something New", "source": "aws.something", "time": "2026-11-25T07:00:00Z", "detail": {"a": 1}})

    assert told.subject == f"{PREFIX}: unrecognised event Something New"
    assert "An event of type Something New from aws.something arrived" in told.text and '{"a": 1}' in told.text


def test_event_a_writer_cannot_read_still_tells_people_what_arrived(world):
    told = world.told({"id": "e-2", "detail-type": DEPLOYMENT_EVENT, "source": DEPLOYER, "detail": {"event": "promoted"}})

    assert told.subject == f"{PREFIX}: unrecognised event {DEPLOYMENT_EVENT}"
    assert "it could not be read (KeyError" in told.text


def test_chat_channels_get_the_same_message_as_a_chatbot_custom_notification(world, report):
    package = world.register(report)

    told = world.told(model_package_state_change(package, "PendingManualApproval"))

    assert told.chat["version"] == "1.0" and told.chat["source"] == "custom"
    assert told.chat["content"]["title"] == told.subject
    assert _quality(report)[0] in told.chat["content"]["description"]


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        ("arn:aws:sagemaker:us-west-2:123456789012:model-package/g/2", "https://us-west-2.console.aws.amazon.com/sagemaker/home?region=us-west-2#/model-packages/g/2"),
        ("arn:aws-cn:sagemaker:cn-north-1:123456789012:model-package/g/2", "https://cn-north-1.console.amazonaws.cn/sagemaker/home?region=cn-north-1#/model-packages/g/2"),
        ("arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:d:e", "https://console.amazonaws-us-gov.com/states/home?region=us-gov-west-1#/v2/executions/details/arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:d:e"),
        ("arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:e-green-5xx", "https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1#alarmsV2:alarm/e-green-5xx"),
        ("arn:aws:cloudwatch:us-west-2:123456789012:alarm:a b/c", "https://us-west-2.console.aws.amazon.com/cloudwatch/home?region=us-west-2#alarmsV2:alarm/a%20b%2Fc"),
    ],
    ids=["other-region", "china", "govcloud", "alarm-china", "alarm-name-quoted"],
)
def test_console_links_point_at_the_resources_region_and_partition(arn, url):
    assert handler.console_url(arn) == url


# -- the daily digest ----------------------------------------------------------------------------------


def test_digest_gives_the_latest_approved_model_and_the_last_day_of_runs_and_deployments(world, report, monkeypatch):
    world.register(report, status="Approved")
    world.register(None)
    failed = world.run("Failed", [{"StepName": "Train", "StepStatus": "Failed", "FailureReason": "AlgorithmError: out of memory"}], started=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=3))
    succeeded = world.run("Succeeded", REGISTERED, started=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2))
    world.run("Succeeded", REGISTERED, started=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3))
    package = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/1"
    sfn_harness.run(world.sfn, world.deployer, {"ModelPackageArn": package}, "deploy-1")
    sfn_harness.run(world.sfn, world.deployer, {"ModelPackageArn": package, "fail": True}, "deploy-2")
    old = sfn_harness.run(world.sfn, world.deployer, {"ModelPackageArn": package}, "deploy-0")
    # An execution from before the last 24 hours; the deployer lists executions newest first.
    machine = stepfunctions_parser_backends[ACCOUNT][REGION].describe_state_machine(world.deployer)
    (stale,) = [e for e in machine.executions if e.execution_arn == old.arn]
    stale.start_date = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
    monkeypatch.setattr(handler, "now", lambda: datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1))

    told = world.told({"digest": True})

    assert told.subject == f"{PREFIX} daily digest: 2 training runs, 2 deployments"
    assert f"The latest approved model is version 1 of {GROUP}. On the test split it scored {_quality(report)[0]}" in told.text
    assert f"{PIPELINE} run {failed.rsplit('/', 1)[-1]}" in told.text and "Failed (step Train failed: AlgorithmError: out of memory)" in told.text
    assert f"{PIPELINE} run {succeeded.rsplit('/', 1)[-1]}" in told.text
    assert "deploy-1 started" in told.text and f"deploying {package}: SUCCEEDED" in told.text
    assert "deploy-2 started" in told.text and "FAILED (CanaryRolledBack: alarm mlops-dev-serverless-green-5xx is in ALARM)" in told.text
    assert "deploy-0" not in told.text


def test_digest_gives_every_models_latest_approved_version_and_deployments(world, monkeypatch):
    package = register_model(world.sagemaker, CHURN_GROUP, "Approved")
    sfn_harness.run(world.sfn, world.churn_deployer, {"ModelPackageArn": package}, "churn-deploy-1")
    monkeypatch.setattr(handler, "now", lambda: datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1))

    told = world.told({"digest": True})

    assert f"No model version of {GROUP} is approved yet." in told.text
    assert f"The latest approved model is version 1 of {CHURN_GROUP}." in told.text
    assert "churn-deploy-1 started" in told.text and f"deploying {package}: SUCCEEDED" in told.text


def test_digest_of_a_quiet_day_says_nothing_happened(world):
    told = world.told({"digest": True})

    assert told.subject == f"{PREFIX} daily digest: 0 training runs, 0 deployments"
    assert f"No model version of {GROUP} is approved yet." in told.text


# -- text from events and people is inert where it is shown ---------------------------------------------

# Slack mentions, a masked link, mrkdwn, a terminal escape, a bidirectional override, NUL, BEL and CR LF, then 10 KB.
HOSTILE = "<!channel> <@U0123ABCD> <https://evil.example/login|Open the console> *bold* _it_ ~gone~ `code` @here &amp; \x1b[31m\u202e\x00\x07 a\r\nb " + "A" * 10240
CONSOLE = f"https://{REGION}.console.aws.amazon.com/"


def _hostile_events(world: World) -> dict[str, dict]:
    package = world.register(None)
    # Within the digest's last 24 hours.
    failed_run = world.run("Failed", [{"StepName": "Train", "StepStatus": "Failed", "FailureReason": HOSTILE}], started=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1))
    pipeline = pipeline_event(world, failed_run, "Failed")
    pipeline["detail"]["pipelineExecutionDisplayName"] = HOSTILE
    alarm = variant_alarm("ALARM", "OK")
    alarm["detail"]["state"]["reason"] = HOSTILE
    alarm["detail"]["configuration"]["description"] = HOSTILE
    monitoring = monitoring_run_ended(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:monitoring-schedule/{PREFIX}-data-quality", HOSTILE, f"s3://{BUCKET}/monitoring/")
    monitoring["detail"]["ProcessingJobName"] = HOSTILE
    return {
        "pipeline run": pipeline,
        "approved package": model_package_state_change(package, "Approved", ApprovalDescription=HOSTILE),
        "rejected package": model_package_state_change(package, "Rejected", ApprovalDescription=HOSTILE),
        "rolled back": deployer_event(world, package, "rolled back", detail=HOSTILE),
        "approval requested": deployer_event(world, package, "approval requested", endpoint=HOSTILE),
        "alarm": alarm,
        "data-quality run": monitoring,
        "batch run": workflow_run_ended(BATCH_ARN, "run-1", "FAILED", input={"input_uri": HOSTILE}, error=HOSTILE, cause=HOSTILE),
        "unknown event": {"id": HOSTILE, "detail-type": HOSTILE, "source": HOSTILE, "detail": {"x": HOSTILE}},
        "digest": {"digest": True},
    }


def _assert_inert(told, *, platform_links: bool) -> None:
    description, title = told.chat["content"]["description"], told.chat["content"]["title"]
    # The only format character is the zero-width space that breaks a mention or a formatting mark in chat.
    for shown, allowed in ((description, "\n\u200b"), (title, "\u200b"), (told.text, "\n")):
        assert not any(unicodedata.category(c)[0] == "C" and c not in allowed for c in shown), "a control or format character got through"
    for rendered in ("<!channel>", "<@U0123ABCD>", "<https://evil", "*bold*", "_it_", "~gone~", "`code`", "@here"):
        assert rendered not in description and rendered not in title
    # Every Slack link is one of the platform's console links, and those the message has are there.
    links = re.findall(r"<([^>]*)>", description)
    assert all(link.startswith(CONSOLE) for link in links) and bool(links) == platform_links
    assert len(description) <= 8000 and len(told.text) <= 60001
    assert told.subject.isascii() and len(told.subject) < 100 and told.subject == told.subject.strip() and "\n" not in told.subject


@pytest.mark.parametrize(
    "kind",
    ["pipeline run", "approved package", "rejected package", "rolled back", "approval requested", "alarm", "data-quality run", "batch run", "unknown event", "digest"],
)
def test_hostile_text_is_inert_in_every_message_kind(world, kind):
    event = _hostile_events(world)[kind]

    # Received parses the published message and its chat payload as JSON, as SNS and AWS Chatbot do.
    told = world.told(event)

    assert "A" * 100 in told.text, "the hostile text is not in the message at all"
    _assert_inert(told, platform_links=kind != "unknown event")


def test_hostile_text_still_reads_as_typed(world):
    package = world.register(None)

    told = world.told(deployer_event(world, package, "rolled back", detail="<!channel> see <https://evil.example|docs> & *retry*"))

    assert "Why: <!channel> see <https://evil.example|docs> & *retry*" in told.text
    assert "&lt;!channel&gt; see &lt;https://evil.example|docs&gt; &amp; \u200b*retry\u200b*" in told.chat["content"]["description"]


# -- what the function may do ----------------------------------------------------------------------------


def test_every_call_the_notify_function_makes_is_allowed_to_its_role(world, report, synthesized, monkeypatch):
    """Each kind of event the function writes up, then the digest; every call it made is decided against the
    notify function's role in dev's templates (and the topic's and bucket's policies), in one evaluator run."""
    package = world.register(report)
    run = world.run("Succeeded", [*REGISTERED, {"StepName": "Register-RegisterModel", "StepStatus": "Succeeded", "Metadata": {"RegisterModel": {"Arn": package}}}])
    world.told(pipeline_event(world, run, "Succeeded"))
    world.told(model_package_state_change(package, "PendingManualApproval"))
    world.told(deployer_event(world, package, "rolled back", detail="alarm"))
    world.told(variant_alarm("ALARM", "OK"))
    sfn_harness.run(world.sfn, world.deployer, {"ModelPackageArn": package}, "deploy-1")
    world.told({"digest": True})
    policies = EnvironmentPolicies(synthesized, "dev")
    _, function = policies.only("operations", "AWS::Lambda::Function")
    role = policies.resolve("operations", function["Properties"]["Role"])
    artifacts = [logical_id for logical_id, r in policies.templates["storage"]["Resources"].items() if r["Type"] == "AWS::S3::Bucket" and logical_id.startswith("Artifacts")]
    names = WorldNames(
        policies,
        "operations",
        REGION,
        {
            world.notify.topic_arn: policies.resolve("operations", function["Properties"]["Environment"]["Variables"]["TOPIC_ARN"]),
            BUCKET: policies.resolve("storage", {"Ref": artifacts[0]}),
        },
    )
    rows = [(call, r) for call in world.notify.calls for r in iam_calls.requests(call, role, names)]

    decided = policies.decide([r for _, r in rows])

    assert {call.operation for call, _ in rows} >= {
        "publish", "describe_model_package", "get_object", "list_pipeline_execution_steps", "list_model_packages", "list_executions", "describe_execution"
    }
    assert [d.explain() for d in decided if not d.allowed] == []

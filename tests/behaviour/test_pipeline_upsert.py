"""Behaviour of the SageMaker pipeline upsert custom resource, driven like the CDK Provider would."""

import contextlib
import copy
import importlib.util
import json
import logging
import re
from pathlib import Path

import boto3
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends
from moto.core.config import default_user_config

from tests.behaviour import iam_calls
from tests.behaviour.cfn_sequences import StackReplay
from tests.behaviour.iam_calls import WorldNames
from tests.behaviour.pipeline_shim import pipeline_shim
from tests.behaviour.sfn_harness import Call
from tests.permissions import EnvironmentPolicies, Request
from tests.templates import policy_statements, role_named

REGION = "eu-west-1"
ACCOUNT = "123456789012"
PIPELINE = "churn-training"
DEFINITION_BUCKET = "cdk-assets-definitions"
DEFINITION_KEY = "pipelines/churn-training/definition.json"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-pipeline-execution"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-pipeline-execution-v2"
SUBSTITUTIONS = {"PipelineRoleName": "sagemaker-processing", "ArtifactsBucket": "mlops-artifacts-eu-west-1"}
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/mlops-pipelines/1b2c3d4e"
WRITES = {"CreatePipeline", "UpdatePipeline", "DeletePipeline", "AddTags", "DeleteTags"}

_HANDLER_PATH = Path(__file__).parents[2] / "functions" / "pipeline_upsert" / "handler.py"
_spec = importlib.util.spec_from_file_location("pipeline_upsert_handler", _HANDLER_PATH)
handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handler)
# Each test in a container of its own: the function keeps its clients for a container's life.
pytestmark = pytest.mark.usefixtures("new_container")


# What pipeline_code/ renders at synth time, with deploy-time values left as ${Name} placeholders.
TEMPLATE = {
    "Version": "2020-12-01",
    "Metadata": {},
    "Parameters": [
        {"Name": "InputDataUrl", "Type": "String", "DefaultValue": "s3://${ArtifactsBucket}/data/churn.csv"},
        {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
    ],
    "PipelineExperimentConfig": {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    },
    "Steps": [
        {
            "Name": "Preprocess",
            "Type": "Processing",
            "Arguments": {
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceType": {"Get": "Parameters.ProcessingInstanceType"},
                        "InstanceCount": 1,
                        "VolumeSizeInGB": 30,
                    }
                },
                "AppSpecification": {
                    "ImageUri": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                    "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/preprocess.py"],
                },
                "RoleArn": "arn:aws:iam::123456789012:role/${PipelineRoleName}",
                "ProcessingInputs": [
                    {
                        "InputName": "input-1",
                        "AppManaged": False,
                        "S3Input": {
                            "S3Uri": {"Get": "Parameters.InputDataUrl"},
                            "LocalPath": "/opt/ml/processing/input",
                            "S3DataType": "S3Prefix",
                            "S3InputMode": "File",
                            "S3DataDistributionType": "FullyReplicated",
                        },
                    }
                ],
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": "train",
                            "AppManaged": False,
                            "S3Output": {
                                "S3Uri": "s3://${ArtifactsBucket}/churn-training/preprocess/train",
                                "LocalPath": "/opt/ml/processing/train",
                                "S3UploadMode": "EndOfJob",
                            },
                        }
                    ]
                },
            },
        }
    ],
}


def _template(**cluster_config) -> dict:
    template = copy.deepcopy(TEMPLATE)
    template["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"].update(cluster_config)
    return template


def _rendered(template: dict, values: dict = SUBSTITUTIONS) -> dict:
    """The definition SageMaker should hold for `template`, placeholders filled in."""
    text = json.dumps(template)
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return json.loads(text)


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers.
# ---------------------------------------------------------------------------------------------




@pytest.fixture(scope="module")
def boto3_session():
    """One boto3 session for the module: building clients then parses each service model once, not per test."""
    return boto3.Session(region_name=REGION)


@pytest.fixture
def aws(aws_env, boto3_session, monkeypatch):
    # moto would give every test a fresh default session; the handler (boto3.client) and the tests use this one.
    core = {**default_user_config["core"], "reset_boto3_session": False}
    with mock_aws(config={"core": core}), pipeline_shim():
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto3_session)
        # The stack the single events below come from, as CloudFormation reports it (UPDATE_COMPLETE).
        template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}}}
        created = boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="mlops-pipelines", TemplateBody=json.dumps(template)
        )["StackId"]
        stack = cloudformation_backends[ACCOUNT][REGION].stacks.pop(created)
        stack.stack_id = STACK_ID
        cloudformation_backends[ACCOUNT][REGION].stacks[STACK_ID] = stack
        yield


@pytest.fixture
def sm(aws):
    """A client of our own, standing for people and tools other than the stack (Studio, the CLI)."""
    return boto3.client("sagemaker", region_name=REGION)


@pytest.fixture
def s3(aws):
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=DEFINITION_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


@pytest.fixture
def handler_calls(aws, monkeypatch):
    """Names of the SageMaker operations the handler calls, in order."""
    calls: list[str] = []
    make_client = handler._client

    def instrumented_client(service):
        client = make_client(service)
        if service == "sagemaker":
            # Once per client: the function keeps its clients, and hands the same one out again.
            client.meta.events.register("before-call.sagemaker", lambda model, **_: calls.append(model.name), unique_id="handler-calls")
        return client

    monkeypatch.setattr(handler, "_client", instrumented_client)
    return calls


@pytest.fixture
def upload(s3):
    def upload(template: dict | str) -> None:
        body = template if isinstance(template, str) else json.dumps(template, indent=2) + "\n"
        s3.put_object(Bucket=DEFINITION_BUCKET, Key=DEFINITION_KEY, Body=body.encode())

    return upload


def _props(**overrides) -> dict:
    props = {
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:PipelineUpsertProvider-framework-onEvent",
        "PipelineName": PIPELINE,
        "DefinitionBucket": DEFINITION_BUCKET,
        "DefinitionKey": DEFINITION_KEY,
        "Substitutions": dict(SUBSTITUTIONS),
        "RoleArn": ROLE,
        "Description": "Churn model training",
        "Strict": "false",
        "DeleteOnStackDelete": "false",
    }
    props.update(overrides)
    return props


def _event(request_type: str, props: dict, old_props: dict | None = None) -> dict:
    """The event the Provider framework's onEvent function passes to the user handler."""
    event = {
        "RequestType": request_type,
        "ServiceToken": props["ServiceToken"],
        "ResponseURL": "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/response",
        "StackId": STACK_ID,
        "RequestId": "5f6a7b8c-0000-4000-8000-000000000000",
        "LogicalResourceId": "ChurnTrainingPipeline",
        "ResourceType": "Custom::SageMakerPipeline",
        "ResourceProperties": props,
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = props["PipelineName"]
    if request_type == "Update":
        event["OldResourceProperties"] = old_props or props
    return event


def _live_definition(sm) -> dict:
    return json.loads(sm.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"])


def _hash_tags(sm) -> list[str]:
    arn = sm.describe_pipeline(PipelineName=PIPELINE)["PipelineArn"]
    return [t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"] if t["Key"] == handler.HASH_TAG]


@pytest.fixture
def deployed(upload, handler_calls):
    """The pipeline as the first deploy of the stack created it; the handler's calls start afresh."""
    upload(TEMPLATE)
    handler.on_event(_event("Create", _props()))
    handler_calls.clear()


def _studio_edit(sm) -> dict:
    """Someone edits the pipeline in Studio: two instances instead of one."""
    edited = _rendered(_template(InstanceCount=2))
    sm.update_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(edited))
    return edited


# ---------------------------------------------------------------------------------------------
# Create and update.
# ---------------------------------------------------------------------------------------------


def test_create_makes_the_pipeline_with_the_substituted_definition_role_and_hash_tag(upload, handler_calls, sm):
    upload(TEMPLATE)

    result = handler.on_event(_event("Create", _props()))

    live = sm.describe_pipeline(PipelineName=PIPELINE)
    assert "${" not in live["PipelineDefinition"]
    assert json.loads(live["PipelineDefinition"]) == _rendered(TEMPLATE)
    assert live["RoleArn"] == ROLE
    assert _hash_tags(sm) == [handler.definition_hash(live["PipelineDefinition"])]
    assert result["PhysicalResourceId"] == PIPELINE
    assert result["Data"] == {
        "PipelineArn": live["PipelineArn"],
        "DefinitionSha256": _hash_tags(sm)[0],
        "Changed": "true",
        "StudioEditOverwritten": "false",
    }
    assert "CreatePipeline" in handler_calls


def test_changed_definition_updates_the_pipeline_and_moves_the_hash_tag(deployed, upload, handler_calls, sm):
    old_hash = _hash_tags(sm)[0]
    upload(_template(InstanceCount=3))

    result = handler.on_event(_event("Update", _props()))

    assert _live_definition(sm) == _rendered(_template(InstanceCount=3))
    assert _hash_tags(sm) == [result["Data"]["DefinitionSha256"]]
    assert result["Data"]["DefinitionSha256"] != old_hash
    assert result["Data"]["Changed"] == "true"
    assert "UpdatePipeline" in handler_calls


def test_unchanged_definition_makes_no_sagemaker_write(deployed, upload, handler_calls, sm):
    # Redeployed with different formatting and key order: the same definition.
    upload(json.dumps(TEMPLATE, sort_keys=True))

    result = handler.on_event(_event("Update", _props()))

    assert handler_calls == ["DescribePipeline", "ListTags"]
    assert not WRITES & set(handler_calls)
    assert result["Data"]["Changed"] == "false"
    assert result["Data"]["StudioEditOverwritten"] == "false"


def test_role_change_alone_updates_the_pipeline(deployed, handler_calls, sm):
    result = handler.on_event(_event("Update", _props(RoleArn=OTHER_ROLE), old_props=_props()))

    assert sm.describe_pipeline(PipelineName=PIPELINE)["RoleArn"] == OTHER_ROLE
    assert "UpdatePipeline" in handler_calls
    assert result["Data"]["Changed"] == "true"
    assert _live_definition(sm) == _rendered(TEMPLATE)


def test_definition_sagemaker_rejects_fails_with_its_message_and_keeps_the_previous_definition(
    deployed, upload, handler_calls, sm
):
    broken = copy.deepcopy(TEMPLATE)
    broken["Steps"].append(
        {
            "Name": "Train",
            "Type": "Training",
            "Arguments": {
                "InputDataConfig": [
                    {
                        "ChannelName": "train",
                        "DataSource": {
                            "S3DataSource": {
                                "S3Uri": {
                                    "Get": "Steps.Preprocesss.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
                                }
                            }
                        },
                    }
                ]
            },
        }
    )
    upload(broken)
    previous_tags = _hash_tags(sm)

    with pytest.raises(handler.PipelineUpsertError) as failure:
        handler.on_event(_event("Update", _props()))

    message = str(failure.value)
    assert "ValidationException" in message
    assert "Step 'Train' references 'Steps.Preprocesss.ProcessingOutputConfig" in message
    assert "keeps its previous definition" in message
    assert _live_definition(sm) == _rendered(TEMPLATE)
    assert _hash_tags(sm) == previous_tags
    assert "AddTags" not in handler_calls


def test_placeholder_without_a_value_fails_before_any_sagemaker_call_naming_it(upload, handler_calls, sm):
    template = _template()
    template["Steps"][0]["Arguments"]["NetworkConfig"] = {
        "VpcConfig": {"SecurityGroupIds": ["${ProcessingSecurityGroup}"], "Subnets": ["subnet-0abc"]}
    }
    upload(template)

    with pytest.raises(handler.PipelineUpsertError, match=r"\bProcessingSecurityGroup\b"):
        handler.on_event(_event("Create", _props()))

    assert handler_calls == []
    assert sm.list_pipelines()["PipelineSummaries"] == []


# ---------------------------------------------------------------------------------------------
# Changes made outside the stack (Studio).
# ---------------------------------------------------------------------------------------------


def test_studio_edit_is_overwritten_with_a_warning_when_not_strict(deployed, handler_calls, sm, caplog):
    _studio_edit(sm)

    with caplog.at_level(logging.WARNING):
        result = handler.on_event(_event("Update", _props(Strict="false")))

    assert _live_definition(sm) == _rendered(TEMPLATE)
    assert result["Data"]["StudioEditOverwritten"] == "true"
    assert result["Data"]["Changed"] == "true"
    assert _hash_tags(sm) == [result["Data"]["DefinitionSha256"]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert PIPELINE in warnings[0] and "changed outside this stack" in warnings[0]


def test_studio_edit_in_strict_mode_is_refused_until_acknowledged(deployed, handler_calls, sm):
    edited = _studio_edit(sm)

    with pytest.raises(handler.PipelineUpsertError) as refusal:
        handler.on_event(_event("Update", _props(Strict="true")))

    message = str(refusal.value)
    assert PIPELINE in message
    assert "Strict" in message
    assert "aws sagemaker add-tags" in message
    assert _live_definition(sm) == edited
    assert not WRITES & set(handler_calls)

    # Run the acknowledge command the message gives, as an operator would.
    command = re.search(r"aws sagemaker add-tags --resource-arn (\S+) --tags Key=([^,\s]+),Value=(\w+)", message)
    assert command, message
    arn, key, value = command.groups()
    assert value == handler.definition_hash(json.dumps(edited))
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": key, "Value": value}])

    result = handler.on_event(_event("Update", _props(Strict="true")))

    assert result["Data"]["Changed"] == "true"
    assert result["Data"]["StudioEditOverwritten"] == "false"
    assert _live_definition(sm) == _rendered(TEMPLATE)
    assert _hash_tags(sm) == [result["Data"]["DefinitionSha256"]]


# ---------------------------------------------------------------------------------------------
# Delete.
# ---------------------------------------------------------------------------------------------


def test_delete_removes_the_pipeline_when_asked_and_tolerates_it_being_gone(deployed, sm):
    event = _event("Delete", _props(DeleteOnStackDelete="true"))

    assert handler.on_event(event) == {"PhysicalResourceId": PIPELINE}
    assert sm.list_pipelines()["PipelineSummaries"] == []

    assert handler.on_event(event) == {"PhysicalResourceId": PIPELINE}


def test_delete_retains_the_pipeline_by_default(deployed, handler_calls, sm):
    assert handler.on_event(_event("Delete", _props(DeleteOnStackDelete="false"))) == {"PhysicalResourceId": PIPELINE}

    assert _live_definition(sm) == _rendered(TEMPLATE)
    assert handler_calls == []


# ---------------------------------------------------------------------------------------------
# Hash.
# ---------------------------------------------------------------------------------------------


def test_definition_hash_ignores_whitespace_and_key_order():
    compact = json.dumps(TEMPLATE, separators=(",", ":"))
    reordered = json.dumps(dict(reversed(list(TEMPLATE.items()))), indent=4, sort_keys=False)

    assert handler.definition_hash(compact) == handler.definition_hash(reordered)
    assert handler.definition_hash(compact) != handler.definition_hash(json.dumps(_template(InstanceCount=2)))


# ---------------------------------------------------------------------------------------------
# The shim itself: the SageMaker behaviour the tests above rely on.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["describe_pipeline", "update_pipeline", "delete_pipeline"])
def test_shim_missing_pipeline_is_resource_not_found(sm, operation):
    extra = {"PipelineDefinition": json.dumps(_rendered(TEMPLATE))} if operation == "update_pipeline" else {}

    with pytest.raises(ClientError) as error:
        getattr(sm, operation)(PipelineName="no-such-pipeline", **extra)

    assert error.value.response["Error"]["Code"] == "ResourceNotFound"
    assert "no-such-pipeline" in error.value.response["Error"]["Message"]


def test_shim_add_tags_overwrites_an_existing_key(sm):
    arn = sm.create_pipeline(
        PipelineName=PIPELINE, PipelineDefinition=json.dumps(_rendered(TEMPLATE)), RoleArn=ROLE,
        Tags=[{"Key": "team", "Value": "ml"}, {"Key": "stage", "Value": "dev"}],
    )["PipelineArn"]

    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "mlops"}])

    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "mlops"}, {"Key": "stage", "Value": "dev"}]


def _with_step(**step) -> str:
    definition = _rendered(TEMPLATE)
    definition["Steps"].append({"Name": "Evaluate", "Type": "Processing", "Arguments": {}, **step})
    return json.dumps(definition)


def _without(key: str) -> str:
    definition = _rendered(TEMPLATE)
    del definition[key]
    return json.dumps(definition)


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ('{"Version": "2020-12-01", "Steps": [', "Unable to parse pipeline definition"),
        ("[]", "Expecting start of Json Object"),
        (_without("Version"), "Missing required property 'Version'"),
        (_without("Steps"), "Missing required property 'Steps'"),
        (_with_step(Type="Notebook"), "Value 'Notebook' for 'Type' of step 'Evaluate'"),
        (_with_step(Name="Preprocess"), "duplicate step name 'Preprocess'"),
        (_with_step(Arguments={"X": {"Get": "Steps.Trian.ModelArtifacts"}}), "step 'Trian' is not defined"),
        (_with_step(DependsOn=["Trian"]), "depends on step 'Trian'"),
    ],
    ids=["unparsable", "not-an-object", "no-version", "no-steps", "unknown-type", "duplicate-name", "bad-get",
         "bad-depends-on"],
)
def test_shim_rejects_invalid_definitions_and_keeps_the_stored_one(sm, definition, expected):
    good = json.dumps(_rendered(TEMPLATE))
    sm.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=good, RoleArn=ROLE)

    for call in (
        lambda: sm.update_pipeline(PipelineName=PIPELINE, PipelineDefinition=definition, RoleArn=OTHER_ROLE),
        lambda: sm.create_pipeline(PipelineName="another", PipelineDefinition=definition, RoleArn=ROLE),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "ValidationException"
        assert expected in error.value.response["Error"]["Message"]

    live = sm.describe_pipeline(PipelineName=PIPELINE)
    assert (live["PipelineDefinition"], live["RoleArn"]) == (good, ROLE)
    assert [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]] == [PIPELINE]


def test_shim_accepts_a_condition_step_referring_to_steps_in_its_branches(sm):
    definition = _rendered(TEMPLATE)
    definition["Steps"].append(
        {
            "Name": "CheckQuality",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [{"Type": "Equals", "LeftValue": {"Get": "Steps.Preprocess.ProcessingJobStatus"},
                                "RightValue": "Completed"}],
                "IfSteps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {}, "DependsOn": ["Preprocess"]}],
                "ElseSteps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "quality"}}],
            },
        }
    )

    sm.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)


def test_live_definition_already_matching_is_retagged_not_reported_as_a_studio_edit(deployed, handler_calls, sm):
    # An earlier deploy updated the pipeline but failed to move the tag: live == what we deploy now.
    arn = sm.describe_pipeline(PipelineName=PIPELINE)["PipelineArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": handler.HASH_TAG, "Value": "0" * 64}])

    result = handler.on_event(_event("Update", _props(Strict="true")))

    assert result["Data"]["Changed"] == "false"
    assert result["Data"]["StudioEditOverwritten"] == "false"
    assert "UpdatePipeline" not in handler_calls
    assert _hash_tags(sm) == [result["Data"]["DefinitionSha256"]]


def test_substituted_values_are_escaped_so_the_definition_stays_valid_json(upload, sm):
    upload(TEMPLATE)
    tricky = {**SUBSTITUTIONS, "ArtifactsBucket": 'bucket"with\\quote'}

    handler.on_event(_event("Create", _props(Substitutions=tricky)))

    parameter = _live_definition(sm)["Parameters"][0]
    assert parameter["DefaultValue"] == 's3://bucket"with\\quote/data/churn.csv'


# ---------------------------------------------------------------------------------------------
# CloudFormation's sequences: what exists afterwards.
# ---------------------------------------------------------------------------------------------

V2_KEY = "pipelines/churn-training/definition-v2.json"


def _stack(**options) -> StackReplay:
    return StackReplay(
        handler,
        resource_type="Custom::SageMakerPipeline",
        logical_id="PipelineTraining",
        stack_name="dev-model-build",
        region=REGION,
        account=ACCOUNT,
        **options,
    )


def _pipelines(sm) -> list[str]:
    return [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]


@pytest.fixture
def versions(upload, s3):
    """Definition v1 at the first deploy's asset key, v2 (three instances) at the next deploy's."""
    upload(TEMPLATE)
    s3.put_object(Bucket=DEFINITION_BUCKET, Key=V2_KEY, Body=json.dumps(_template(InstanceCount=3)).encode())


@pytest.mark.parametrize("repeat", [1, 2], ids=["once", "retried"])
def test_sequence_create_update_and_stack_delete(versions, sm, repeat):
    stack = _stack(repeat_each_event=repeat)
    stack.create(_props(DeleteOnStackDelete="true"))
    stack.update(_props(DeleteOnStackDelete="true", DefinitionKey=V2_KEY))
    assert _live_definition(sm) == _rendered(_template(InstanceCount=3))

    stack.delete_stack()

    assert _pipelines(sm) == []


@pytest.mark.parametrize("repeat", [1, 2], ids=["once", "retried"])
def test_replacement_through_a_new_logical_id_keeps_the_pipeline_and_its_deletion_with_the_stack(versions, sm, repeat):
    stack = _stack(repeat_each_event=repeat)
    stack.create(_props(DeleteOnStackDelete="true"))

    stack.replace_logical_id("PipelineTrainingMoved")

    assert _live_definition(sm) == _rendered(TEMPLATE)
    stack.delete_stack()
    assert _pipelines(sm) == []


def test_rollback_of_an_update_that_added_a_resource_for_the_same_pipeline_keeps_it(versions, sm):
    stack = _stack()
    stack.create(_props(DeleteOnStackDelete="true"))

    stack.create_rolled_back(_props(DeleteOnStackDelete="true"), "PipelineTrainingMoved")

    assert _live_definition(sm) == _rendered(TEMPLATE)
    stack.delete_stack()  # the remaining resource owns it again
    assert _pipelines(sm) == []


def test_update_rolled_back_after_a_later_failure_restores_the_previous_definition(versions, sm):
    stack = _stack()
    stack.create(_props(Strict="true"))

    stack.update_rolled_back(_props(Strict="true", DefinitionKey=V2_KEY))

    assert _live_definition(sm) == _rendered(TEMPLATE)


def _add_tags_fails(boto3_session):
    """AddTags throttled for good while the update runs: UpdatePipeline succeeded, the hash tag did not move."""

    @contextlib.contextmanager
    def failing():
        raised: list[ClientError] = []

        def throttle(**_):
            raised.append(ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "AddTags"))
            raise raised[-1]

        # The clients the function keeps for its container's life, and those it builds from the session later.
        emitters = [boto3_session._session.get_component("event_emitter"), *(client.meta.events for client in handler._clients.values())]
        for events in emitters:
            events.register("before-call.sagemaker.AddTags", throttle)
        try:
            yield raised
        finally:
            for events in emitters:
                events.unregister("before-call.sagemaker.AddTags", throttle)

    return failing


def test_strict_mode_accepts_the_rollback_of_an_update_that_failed_after_updating_the_pipeline(
    versions, sm, boto3_session
):
    stack = _stack()
    stack.create(_props(Strict="true"))

    stack.update_rolled_back(_props(Strict="true", DefinitionKey=V2_KEY), update_fails=_add_tags_fails(boto3_session))

    assert _live_definition(sm) == _rendered(TEMPLATE)


def test_strict_mode_still_refuses_a_studio_edit_outside_a_rollback(versions, sm):
    stack = _stack()
    stack.create(_props(Strict="true"))
    edited = _studio_edit(sm)

    with pytest.raises(handler.PipelineUpsertError, match="Strict mode"):
        stack.update(_props(Strict="true", DefinitionKey=V2_KEY))

    assert _live_definition(sm) == edited


def test_a_renamed_pipeline_is_created_and_the_old_one_deleted(versions, sm):
    stack = _stack()
    stack.create(_props(DeleteOnStackDelete="true"))

    stack.update(_props(DeleteOnStackDelete="true", PipelineName="churn-training-2"))

    assert _pipelines(sm) == ["churn-training-2"]


def test_a_rolled_back_rename_deletes_the_new_pipeline_and_keeps_the_old_one(versions, sm):
    stack = _stack()
    stack.create(_props(DeleteOnStackDelete="true"))

    stack.update_rolled_back(_props(DeleteOnStackDelete="true", PipelineName="churn-training-2"))

    assert _pipelines(sm) == [PIPELINE]
    assert _live_definition(sm) == _rendered(TEMPLATE)


# ---------------------------------------------------------------------------------------------
# Ownership.
# ---------------------------------------------------------------------------------------------


def _made_outside(sm, tags=()) -> dict:
    definition = _rendered(_template(InstanceCount=5))
    sm.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition), RoleArn=OTHER_ROLE, Tags=list(tags))
    return definition


def test_a_pipeline_created_outside_the_stack_is_not_adopted(versions, sm):
    theirs = _made_outside(sm)
    stack = _stack()

    with pytest.raises(handler.PipelineUpsertError) as refusal:
        stack.create(_props(DeleteOnStackDelete="true"))

    assert f"Pipeline {PIPELINE} already exists" in str(refusal.value)
    assert "adopt_existing_pipelines" in str(refusal.value)
    assert _live_definition(sm) == theirs


def test_a_pipeline_owned_by_another_stack_is_neither_adopted_nor_deleted(versions, sm):
    other_owner = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/other-model-build/9f8e7d6c/PipelineTraining"
    theirs = _made_outside(sm, tags=[{"Key": handler.OWNER_TAG, "Value": other_owner}])
    stack = _stack()

    with pytest.raises(handler.PipelineUpsertError, match="other-model-build"):
        stack.create(_props(DeleteOnStackDelete="true"))
    # The Delete that follows a failed Create names the pipeline.
    handler.on_event(
        {**_event("Delete", _props(DeleteOnStackDelete="true")), "StackId": stack.stack_id, "LogicalResourceId": "PipelineTraining"}
    )

    assert _live_definition(sm) == theirs


def test_adoption_when_allowed_takes_the_pipeline_over_and_deletes_it_with_the_stack(versions, sm):
    _made_outside(sm)
    stack = _stack()

    stack.create(_props(DeleteOnStackDelete="true", AdoptExisting="true"))

    assert _live_definition(sm) == _rendered(TEMPLATE)
    stack.delete_stack()
    assert _pipelines(sm) == []


def test_every_call_of_the_sequences_is_an_action_the_synthesized_role_grants(synthesized, versions, boto3_session):
    stack = _stack()
    calls = set()
    boto3_session.events.register(
        "before-call", lambda model, **_: calls.add(f"{model.service_model.signing_name}:{model.name}"), unique_id="granted-calls"
    )
    stack.create(_props(Strict="true", DeleteOnStackDelete="true"))
    stack.update_rolled_back(_props(Strict="true", DeleteOnStackDelete="true", DefinitionKey=V2_KEY), update_fails=_add_tags_fails(boto3_session))
    stack.create_rolled_back(_props(Strict="true", DeleteOnStackDelete="true"), "PipelineTrainingMoved")
    stack.delete_stack()
    boto3_session.events.unregister("before-call", unique_id="granted-calls")
    template = synthesized.template("dev", "model-build")

    granted = {
        action
        for statement in policy_statements(template, role_named(template, "PipelineUpsertProviderHandlerRole"))
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    }
    assert calls <= granted, calls - granted


# ---------------------------------------------------------------------------------------------
# Every call the handler makes, decided against dev's synthesized policies.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def policies(synthesized):
    return EnvironmentPolicies(synthesized, "dev")


def _synthesized_upsert(policies: EnvironmentPolicies) -> tuple[str, dict]:
    """The logical id and resolved properties of dev's training pipeline upsert."""
    ((logical_id, resource),) = [
        (logical_id, r)
        for logical_id, r in policies.templates["model-build"]["Resources"].items()
        if r["Type"] == "Custom::SageMakerPipeline" and r["Properties"]["PipelineName"] == f"{policies.prefix}-training"
    ]
    return logical_id, {**policies.resolve("model-build", resource["Properties"]), "Substitutions": dict(SUBSTITUTIONS)}


def _upsert_role(policies: EnvironmentPolicies) -> str:
    (role,) = [
        logical_id
        for logical_id, r in policies.templates["model-build"]["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and logical_id.startswith("PipelineUpsertProviderHandlerRole")
    ]
    return policies.arn("model-build", role)


def test_every_call_of_a_deploy_a_refused_studio_edit_and_a_stack_delete_is_allowed_to_the_synthesized_role(
    policies, aws, s3, sm, monkeypatch
):
    logical_id, props = _synthesized_upsert(policies)
    s3.create_bucket(Bucket=props["DefinitionBucket"], CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=props["DefinitionBucket"], Key=props["DefinitionKey"], Body=json.dumps(TEMPLATE).encode())
    calls: list[Call] = []
    session = boto3.Session(region_name=REGION)
    session.events.register(
        "before-parameter-build",
        lambda params, model, **_: calls.append(Call("pipeline upsert", model.service_model.service_name, xform_name(model.name), dict(params))),
    )
    monkeypatch.setattr(handler, "_client", lambda service: session.client(service, config=handler._CONFIG))

    def event(request_type: str, **changed) -> dict:
        return {**_event(request_type, {**props, **changed}), "LogicalResourceId": logical_id}

    handler.on_event(event("Create"))
    s3.put_object(Bucket=props["DefinitionBucket"], Key=props["DefinitionKey"], Body=json.dumps(_template(InstanceCount=3)).encode())
    handler.on_event(event("Update"))
    sm.update_pipeline(PipelineName=props["PipelineName"], PipelineDefinition=json.dumps(_rendered(_template(InstanceCount=2))))
    with pytest.raises(handler.PipelineUpsertError, match="Strict mode"):
        handler.on_event(event("Update", Strict="true"))
    handler.on_event(event("Delete", DeleteOnStackDelete="true"))
    names = WorldNames(policies, "model-build", REGION, {STACK_ID: policies.resolve("model-build", {"Ref": "AWS::StackId"})})

    decided = policies.decide([r for call in calls for r in iam_calls.requests(call, _upsert_role(policies), names)])

    assert {call.operation for call in calls} == {
        "get_object", "describe_pipeline", "create_pipeline", "list_tags", "update_pipeline", "add_tags", "describe_stacks",
        "list_stack_resources", "delete_pipeline",
    }
    assert [d.explain() for d in decided if not d.allowed] == []


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(lambda p, role: Request(role, "sagemaker:CreatePipeline", _pipeline_arn(p, "other")), id="another-pipeline"),
        pytest.param(lambda p, role: Request(role, "sagemaker:DeletePipeline", _pipeline_arn(p, "draft-someone-training")), id="a-draft"),
        pytest.param(
            lambda p, role: Request(role, "iam:PassRole", _pipeline_role(p), {"iam:PassedToService": "lambda.amazonaws.com"}), id="role-to-lambda"
        ),
        pytest.param(
            lambda p, role: Request(role, "iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"}), id="its-own-role"
        ),
        pytest.param(
            lambda p, role: Request(role, "s3:GetObject", f"arn:aws:s3:::{_synthesized_upsert(p)[1]['DefinitionBucket']}/other.json"),
            id="another-asset",
        ),
    ],
)
def test_the_upsert_role_is_denied_what_its_pipeline_does_not_need(policies, request_):
    (decision,) = policies.decide([request_(policies, _upsert_role(policies))])

    assert not decision.allowed, decision.explain()


def _pipeline_arn(policies: EnvironmentPolicies, folder: str) -> str:
    return f"arn:aws:sagemaker:{policies.region}:{policies.account}:pipeline/{policies.prefix}-{folder}"


def _pipeline_role(policies: EnvironmentPolicies) -> str:
    return _synthesized_upsert(policies)[1]["RoleArn"]

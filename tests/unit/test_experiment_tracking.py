"""Every training run is findable with its parameters and metrics: in Experiments, and in MLflow where config
keeps it on (every environment's config does): serverless by default, a tracking server only where asked."""

from __future__ import annotations

import pytest

from tests.synth import Synthesized
from tests.templates import cfn_text, resources

MLFLOW_TYPES = {"serverless": ("AWS::SageMaker::MlflowApp", "Arn"), "tracking-server": ("AWS::SageMaker::MlflowTrackingServer", "TrackingServerArn")}


def _mlflow(synthesized: Synthesized, environment: str, resource_type: str) -> dict[str, dict]:
    return resources(synthesized.template(environment, "model-build"), resource_type)


def _mlflow_vpc_endpoints(synthesized: Synthesized, environment: str) -> list[dict]:
    """Interface endpoints to SageMaker managed MLflow's API, aws.sagemaker.<region>.experiments."""
    endpoints = resources(synthesized.template(environment, "network"), "AWS::EC2::VPCEndpoint").values()
    return [e["Properties"] for e in endpoints if cfn_text(e["Properties"]["ServiceName"]).endswith(".experiments")]


def _studio_grant(synthesized: Synthesized, environment: str) -> tuple[dict, dict]:
    """Studio's UseMlflow statement, and what its resource is: the value the model-build stack publishes for it."""
    template = synthesized.template(environment, "studio")
    (statement,) = [
        s for r in resources(template, "AWS::IAM::Policy").values() for s in r["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "UseMlflow"
    ]
    published = statement["Resource"]["Fn::GetStackOutput"]
    assert published["StackName"] == f"{environment}-model-build"
    return statement, synthesized.template(environment, "model-build")["Outputs"][published["OutputName"]]["Value"]


def _train_step(definition: dict) -> dict:
    (train,) = [s for s in definition["Steps"] if s["Name"] == "Train"]
    return train["Arguments"]


def _upsert(synthesized: Synthesized, environment: str) -> dict:
    """The training pipeline's upsert (other pipeline folders have their own)."""
    (upsert,) = [
        r["Properties"]
        for r in synthesized.template(environment, "model-build")["Resources"].values()
        if r["Type"] == "Custom::SageMakerPipeline" and r["Properties"]["PipelineName"] == f"{synthesized.prefix(environment)}-training"
    ]
    return upsert


def test_each_run_is_a_trial_of_the_experiment_named_after_the_environments_pipeline(synthesized: Synthesized, environment):
    definition = synthesized.pipeline_definition(environment, "training")

    # The pipeline is <project>-<env>-training, so each environment's runs go to an experiment of its own.
    assert definition["PipelineExperimentConfig"] == {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }


def test_every_environment_tracks_runs_in_the_mlflow_its_config_names_and_no_other(synthesized: Synthesized, environment):
    mlflow = synthesized.config(environment).model_build.mlflow
    assert mlflow.enabled

    (resource_type, _), (other_type, _) = MLFLOW_TYPES[mlflow.mode], next(v for k, v in MLFLOW_TYPES.items() if k != mlflow.mode)
    assert len(_mlflow(synthesized, environment, resource_type)) == 1
    assert _mlflow(synthesized, environment, other_type) == {}


def test_no_environment_pays_for_an_idle_tracking_server_by_default(synthesized: Synthesized, environment):
    assert synthesized.config(environment).model_build.mlflow.mode == "serverless"
    assert _mlflow(synthesized, environment, "AWS::SageMaker::MlflowTrackingServer") == {}


def test_the_mlflow_app_stores_artifacts_in_the_artifacts_bucket_and_registers_no_models(synthesized: Synthesized, environment):
    mlflow = synthesized.config(environment).model_build.mlflow
    ((_, app),) = _mlflow(synthesized, environment, "AWS::SageMaker::MlflowApp").items()
    properties = app["Properties"]

    assert properties["Name"] == f"{synthesized.prefix(environment)}-mlflow"
    assert properties["WeeklyMaintenanceWindowStart"] == mlflow.weekly_maintenance_window
    assert properties["ModelRegistrationMode"] == "AutoModelRegistrationDisabled"
    assert cfn_text(properties["ArtifactStoreUri"]).startswith("s3://<") and cfn_text(properties["ArtifactStoreUri"]).endswith("/mlflow/")


def test_the_pipeline_and_training_step_log_to_the_environments_mlflow(synthesized: Synthesized, environment):
    definition = synthesized.pipeline_definition(environment, "training")
    mlflow_type, arn_attribute = MLFLOW_TYPES[synthesized.config(environment).model_build.mlflow.mode]
    (mlflow_id,) = _mlflow(synthesized, environment, mlflow_type)
    experiment = f"{synthesized.prefix(environment)}-training"

    assert definition["MlflowConfig"] == {"MlflowResourceArn": "${MlflowArn}", "MlflowExperimentName": experiment}
    assert _train_step(definition)["Environment"] == {"MLFLOW_TRACKING_URI": "${MlflowArn}", "MLFLOW_EXPERIMENT_NAME": experiment}
    # The upsert puts the ARN in place of the placeholder when it deploys the definition.
    assert _upsert(synthesized, environment)["Substitutions"]["MlflowArn"] == {"Fn::GetAtt": [mlflow_id, arn_attribute]}


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_vpc_only_training_jobs_reach_mlflow_from_their_private_subnets(synthesized: Synthesized, environment):
    (endpoint,) = _mlflow_vpc_endpoints(synthesized, environment)

    # The private DNS name the training job's requests resolve: <region>.experiments.sagemaker.aws.
    assert endpoint["PrivateDnsEnabled"] is True
    assert endpoint["VpcEndpointType"] == "Interface"


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_the_mlflow_endpoint_lets_only_this_accounts_principals_reach_this_accounts_mlflow(synthesized: Synthesized, environment):
    (endpoint,) = _mlflow_vpc_endpoints(synthesized, environment)
    statements = {s["Sid"]: s for s in endpoint["PolicyDocument"]["Statement"]}

    assert {sid: (s["Action"], cfn_text(s["Resource"]).rsplit(":", 1)[-1]) for sid, s in statements.items()} == {
        "ThisAccountsTrackingServers": ("sagemaker-mlflow:*", "mlflow-tracking-server/*"),
        "ThisAccountsMlflowApps": ("sagemaker:CallMlflowAppApi", "mlflow-app/*"),
    }
    assert all(s["Condition"] == {"StringEquals": {"aws:PrincipalAccount": synthesized.config(environment).account}} for s in statements.values())


def test_studio_users_may_open_the_environments_mlflow_app_and_no_other(synthesized: Synthesized, environment):
    statement, resource = _studio_grant(synthesized, environment)
    (app_id,) = _mlflow(synthesized, environment, "AWS::SageMaker::MlflowApp")

    assert "sagemaker:CreatePresignedMlflowAppUrl" in statement["Action"]
    assert resource == {"Fn::GetAtt": [app_id, "Arn"]}


def test_a_tracking_server_is_provisioned_only_when_config_asks_for_one(optional_pieces_on: Synthesized):
    asked = optional_pieces_on.config("dev").model_build.mlflow
    ((server_id, server),) = _mlflow(optional_pieces_on, "dev", "AWS::SageMaker::MlflowTrackingServer").items()
    definition = optional_pieces_on.pipeline_definition("dev", "training")

    assert asked.mode == "tracking-server"
    assert _mlflow(optional_pieces_on, "dev", "AWS::SageMaker::MlflowApp") == {}
    assert server["Properties"]["TrackingServerName"] == f"{optional_pieces_on.prefix('dev')}-mlflow"
    assert (server["Properties"]["TrackingServerSize"], server["Properties"]["WeeklyMaintenanceWindowStart"]) == (asked.size, asked.weekly_maintenance_window)
    assert definition["MlflowConfig"]["MlflowResourceArn"] == "${MlflowArn}"
    assert _upsert(optional_pieces_on, "dev")["Substitutions"]["MlflowArn"] == {"Fn::GetAtt": [server_id, "TrackingServerArn"]}


def test_studio_users_may_open_a_tracking_server_they_are_given(optional_pieces_on: Synthesized):
    statement, resource = _studio_grant(optional_pieces_on, "dev")
    (server_id,) = _mlflow(optional_pieces_on, "dev", "AWS::SageMaker::MlflowTrackingServer")

    assert "sagemaker:CreatePresignedMlflowTrackingServerUrl" in statement["Action"]
    assert resource == {"Fn::GetAtt": [server_id, "TrackingServerArn"]}


def test_with_mlflow_off_runs_are_tracked_in_experiments_only(tmp_path):
    from tests.synth import environment_config, model_build_stack

    dev = environment_config("dev").model_build
    off = dev.model_copy(update={"mlflow": dev.mlflow.model_copy(update={"enabled": False})})
    app, stack = model_build_stack(tmp_path, off)
    template = app.synth().get_stack_by_name("model-build").template
    definition = stack.pipeline_definitions["training"]

    assert not resources(template, "AWS::SageMaker::MlflowApp") and not resources(template, "AWS::SageMaker::MlflowTrackingServer")
    assert definition["MlflowConfig"] is None
    assert "MLFLOW_TRACKING_URI" not in (_train_step(definition).get("Environment") or {})

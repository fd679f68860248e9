"""A SageMaker managed MLflow tracking server whose artifacts live under a prefix of an encrypted bucket."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

# What a client needs of the tracking server to record runs: experiments, runs, their parameters, metrics
# and tags. Registering models in MLflow, deleting and the UI are left out.
LOG_RUNS = [
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:GetExperiment",
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:SearchExperiments",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:UpdateRun",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:LogMetric",
    "sagemaker-mlflow:LogParam",
    "sagemaker-mlflow:LogInputs",
    "sagemaker-mlflow:SetTag",
]


# What a person needs on top of LOG_RUNS to open the tracking server's UI from Studio.
OPEN_UI = ["sagemaker:CreatePresignedMlflowTrackingServerUrl", "sagemaker:DescribeMlflowTrackingServer"]


def let_people_use(role: iam.IRole, tracking_server_arn: str) -> None:
    """Let `role` (e.g. Studio's) record runs on the tracking server and open its UI."""
    role.add_to_principal_policy(iam.PolicyStatement(sid="UseTheTrackingServer", actions=[*LOG_RUNS, *OPEN_UI], resources=[tracking_server_arn]))
    # The UI action has no resource-level permissions; the presigned URL it needs is scoped above.
    role.add_to_principal_policy(iam.PolicyStatement(sid="OpenTheMlflowUi", actions=["sagemaker-mlflow:AccessUI"], resources=["*"]))


class MlflowTrackingServer(Construct):
    """Tracking server `name` of `size`, storing artifacts under `artifact_prefix` of `bucket`; its own role
    holds `artifact_access` (reading and writing that prefix, owned by the bucket's stack) and nothing else.
    `log_runs()` lets a role record runs on it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        bucket: s3.IBucket,
        artifact_prefix: str,
        artifact_access: iam.IManagedPolicy,
        size: str,
        weekly_maintenance_window: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"MLflow tracking server {name}: its artifact store",
            managed_policies=[artifact_access],
        )
        self.server = sagemaker.CfnMlflowTrackingServer(
            self,
            "Server",
            tracking_server_name=name,
            artifact_store_uri=f"s3://{bucket.bucket_name}/{artifact_prefix}",
            role_arn=self.role.role_arn,
            tracking_server_size=size,
            weekly_maintenance_window_start=weekly_maintenance_window,
            automatic_model_registration=False,
        )
        self.arn = self.server.attr_tracking_server_arn

    def log_runs(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(sid="LogRunsToTheTrackingServer", actions=LOG_RUNS, resources=[self.arn]))

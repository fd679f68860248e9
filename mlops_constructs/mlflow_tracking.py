"""SageMaker managed MLflow for an environment's runs: a serverless MLflow App (billed for use) or a provisioned
tracking server (billed per hour while it exists), either one storing artifacts under a prefix of an encrypted
bucket.

Clients address both alike: MLflow's REST API at the region's `<region>.experiments.sagemaker.aws` (the
`experiments` VPC endpoint inside a VPC), with the resource's ARN in a routing header, signed for the service
`sagemaker-mlflow`; pipelines name either ARN in their MlflowConfig.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

# What a client needs of a tracking server to record runs: experiments, runs, their parameters, metrics
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


class _MlflowResource(Construct):
    """What both kinds share: a role for the artifact store holding `artifact_access` (reading and writing the
    prefix, owned by the bucket's stack) and nothing else; `arn`; `log_runs()` and `let_people_use()`."""

    # What a client needs to record runs, and what a person needs on top of it to open the UI from Studio.
    log_runs_actions: tuple[str, ...] = ()
    open_ui: tuple[str, ...] = ()
    arn: str

    def __init__(self, scope: Construct, construct_id: str, *, name: str, artifact_access: iam.IManagedPolicy) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"MLflow {name}: its artifact store",
            managed_policies=[artifact_access],
        )

    def log_runs(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(sid="LogRunsToMlflow", actions=list(self.log_runs_actions), resources=[self.arn]))

    def let_people_use(self, role: iam.IRole) -> None:
        """Let `role` (e.g. Studio's) record runs here and open the MLflow UI."""
        role.add_to_principal_policy(iam.PolicyStatement(sid="UseMlflow", actions=[*self.log_runs_actions, *self.open_ui], resources=[self.arn]))
        # The UI action has no resource-level permissions; the presigned URL it needs is scoped above.
        role.add_to_principal_policy(iam.PolicyStatement(sid="OpenTheMlflowUi", actions=["sagemaker-mlflow:AccessUI"], resources=["*"]))


class MlflowApp(_MlflowResource):
    """Serverless MLflow App `name`, storing artifacts under `artifact_prefix` of `bucket`: no server runs
    while nobody logs, so it costs nothing idle. Its ARN holds an ID SageMaker generates, not the name.

    IAM authorizes every MLflow API call on an app as one action on the app, sagemaker:CallMlflowAppApi (the
    service authorization reference of September 2026): unlike a tracking server's per-call sagemaker-mlflow
    actions, whoever may log runs there may also delete them.
    """

    log_runs_actions = ("sagemaker:CallMlflowAppApi",)
    open_ui = ("sagemaker:CreatePresignedMlflowAppUrl", "sagemaker:DescribeMlflowApp")

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        bucket: s3.IBucket,
        artifact_prefix: str,
        artifact_access: iam.IManagedPolicy,
        weekly_maintenance_window: str,
    ) -> None:
        super().__init__(scope, construct_id, name=name, artifact_access=artifact_access)
        self.app = sagemaker.CfnMlflowApp(
            self,
            "App",
            name=name,
            artifact_store_uri=f"s3://{bucket.bucket_name}/{artifact_prefix}",
            role_arn=self.role.role_arn,
            model_registration_mode="AutoModelRegistrationDisabled",
            weekly_maintenance_window_start=weekly_maintenance_window,
        )
        self.arn = self.app.attr_arn


class MlflowTrackingServer(_MlflowResource):
    """Provisioned tracking server `name` of `size`, storing artifacts under `artifact_prefix` of `bucket`;
    it bills per hour for as long as it exists."""

    log_runs_actions = tuple(LOG_RUNS)
    open_ui = ("sagemaker:CreatePresignedMlflowTrackingServerUrl", "sagemaker:DescribeMlflowTrackingServer")

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
        super().__init__(scope, construct_id, name=name, artifact_access=artifact_access)
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

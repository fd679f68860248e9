"""A model's package group: its versions, and which of them its endpoint serves."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from config.naming import model_package_group_name, serving_endpoint_name, serving_model_name_prefix
from mlops_cli.environment import Environment
from mlops_cli.errors import MlopsError


def group_name(env: Environment) -> str:
    return model_package_group_name(env.model.stem)


def versions(env: Environment) -> list[dict[str, Any]]:
    """Every version of the group, newest first, as ListModelPackages summarises them."""
    sagemaker = env.client("sagemaker")
    group = group_name(env)
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as error:
        raise MlopsError(
            f"model package group {group} does not exist in account {env.account}, {env.region} "
            f"({error.response['Error'].get('Message', '')}): is environment {env.name} deployed?"
        ) from None
    packages = [
        package
        for page in sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group, ModelPackageType="Versioned")
        for package in page["ModelPackageSummaryList"]
    ]
    return sorted(packages, key=lambda package: package.get("ModelPackageVersion", 0), reverse=True)


def version(env: Environment, number: int) -> dict[str, Any]:
    """The summary of version `number`, or an error listing the versions there are."""
    packages = versions(env)
    for package in packages:
        if package.get("ModelPackageVersion") == number:
            return package
    known = ", ".join(str(package["ModelPackageVersion"]) for package in reversed(packages)) or "none"
    raise MlopsError(f"{group_name(env)} has no version {number}; its versions: {known}")


_MODEL_VERSION = re.compile(r"-v(\d+)$")


def serving(env: Environment) -> dict[str, Any] | None:
    """The endpoint as it serves now: status, config and each variant's weight, instances, model and
    package version; None when there is no endpoint yet."""
    sagemaker = env.client("sagemaker")
    name = serving_endpoint_name(env.model.stem, env.model.deployment.serving.mode)
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return None
        raise
    models = {
        variant["VariantName"]: variant["ModelName"]
        for variant in sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])["ProductionVariants"]
    }
    stem = serving_model_name_prefix(env.model.stem, env.model.deployment.serving.mode)
    variants = []
    for variant in endpoint.get("ProductionVariants", []):
        model = models.get(variant["VariantName"], "")
        match = _MODEL_VERSION.search(model) if model.startswith(f"{stem}-v") else None
        variants.append(
            {
                "variant": variant["VariantName"],
                "weight": variant.get("CurrentWeight"),
                "instances": variant.get("CurrentInstanceCount"),
                "model": model,
                "version": int(match.group(1)) if match else None,
            }
        )
    return {"endpoint": name, "status": endpoint["EndpointStatus"], "config": endpoint["EndpointConfigName"], "variants": variants}

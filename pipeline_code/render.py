"""Turning ``pipeline_code/<name>/pipeline.py`` into definition JSON at synth time, offline and repeatably.

A folder may hold ``definition.json`` instead of ``pipeline.py``: a definition made or edited in Studio and
brought home with ``mlops pipeline pull``. Its environment-specific values are placeholders that rendering
fills in from the settings (``SYNTH_PLACEHOLDERS``); the deploy-time ones are left for the upsert.

Building a definition imports the SageMaker SDK (seconds), so rendered definitions are cached on a hash of
everything that goes into them: the pipeline's folder, this package, the settings and the SDK version.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib
import io
import json
import logging
import os
import re
import tarfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from pipeline_code.settings import PipelineSettings

PACKAGE_DIR = Path(__file__).resolve().parent
# The definition file of a pipeline folder without pipeline.py.
DEFINITION_FILE = "definition.json"
# What rendering fills into a definition.json, from the settings: ${<name>}, and ${Script:<file>} for each
# step script's S3 location.
SYNTH_PLACEHOLDERS = ("PipelineName", "PipelineRoleArn", "ModelPackageGroupName")
SCRIPT_PLACEHOLDER = "Script:"
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
SOURCE_ARCHIVE = "sourcedir.tar.gz"
# The SDK's defaults document for rendering: telemetry off, since it would call STS and an AWS endpoint.
_SDK_DEFAULTS = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


# The SageMaker SDK's packages a definition is built with; a new version of any of them renders anew.
SDK_PACKAGES = ("sagemaker-core", "sagemaker-train", "sagemaker-serve", "sagemaker-mlops")


def pipeline_names() -> list[str]:
    """Every folder under pipeline_code/ that defines a pipeline."""
    return sorted({p.parent.name for pattern in ("*/pipeline.py", f"*/{DEFINITION_FILE}") for p in PACKAGE_DIR.glob(pattern)})


def defined_by_json(name: str) -> bool:
    """Whether the folder's pipeline is its definition.json rather than a pipeline.py."""
    return not (PACKAGE_DIR / name / "pipeline.py").exists() and (PACKAGE_DIR / name / DEFINITION_FILE).exists()


def step_scripts(name: str) -> list[Path]:
    """The step scripts of a pipeline: every Python file in its folder except the definition itself."""
    return sorted(p for p in (PACKAGE_DIR / name).glob("*.py") if p.name not in ("pipeline.py", "__init__.py"))


def source_archive(name: str, directory: Path) -> Path:
    """A ``sourcedir.tar.gz`` of the step scripts, for framework containers' script mode.

    Byte-identical for identical scripts (fixed owner, mode and times, sorted entries), so its asset hash
    and the definition that references it change only when a script does.
    """
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for script in step_scripts(name):
            data = script.read_bytes()
            info = tarfile.TarInfo(script.name)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o644, 0, 0, 0
            tar.addfile(info, io.BytesIO(data))
    target = directory / name / hashlib.sha256(buffer.getvalue()).hexdigest()[:16] / SOURCE_ARCHIVE
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed, so a synth running in parallel never stages a half-written archive.
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(buffer.getvalue())
        temporary.replace(target)
    return target


def render(name: str, settings: PipelineSettings) -> str:
    """Build the pipeline with the SDK (or fill in its definition.json) and return its definition JSON.
    Makes no AWS call."""
    if defined_by_json(name):
        return fill_in_definition((PACKAGE_DIR / name / DEFINITION_FILE).read_text(), settings)
    # The SDK resolves a region when some of its modules are imported, and ModelTrainer asks IAM whether
    # the role can be assumed unless this switch is off: the role may not even exist yet at synth time.
    os.environ.setdefault("AWS_DEFAULT_REGION", settings.region)
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    module = importlib.import_module(f"pipeline_code.{name}.pipeline")
    with _sdk_defaults_validated_once(), _quiet_logging():
        session = PipelineSession(
            boto_session=boto3.Session(region_name=settings.region),
            default_bucket=settings.artifacts_bucket,
            sagemaker_config=_SDK_DEFAULTS,
        )
        # The bucket exists (the storage stack owns it). Marking it resolved skips the SDK's check-or-create
        # S3 call; the SDK has no public switch for that.
        session._default_bucket = settings.artifacts_bucket
        pipeline = module.build_pipeline(settings, session)
        definition = pipeline.definition()
    return json.dumps(json.loads(definition), indent=2) + "\n"


def fill_in_definition(text: str, settings: PipelineSettings) -> str:
    """A definition.json with the settings' values in its synth-time placeholders (escaped as JSON text);
    deploy-time placeholders stay for the upsert."""
    values = {
        "PipelineName": settings.pipeline_name,
        "PipelineRoleArn": settings.role_arn,
        "ModelPackageGroupName": settings.model_package_group_name,
        **{f"{SCRIPT_PLACEHOLDER}{name}": uri for name, uri in settings.script_uris.items()},
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return json.dumps(values[name])[1:-1]
        if name.startswith(SCRIPT_PLACEHOLDER):
            raise ValueError(f"{DEFINITION_FILE} refers to ${{{name}}}, but the folder has no script {name.removeprefix(SCRIPT_PLACEHOLDER)}")
        return match.group(0)

    return json.dumps(json.loads(_PLACEHOLDER.sub(value, text)), indent=2) + "\n"


@contextmanager
def _quiet_logging() -> Iterator[None]:
    """Mute logging below ERROR while the SDK builds: it turns root logging up to DEBUG and narrates every
    default it applies, and warns that a PipelineSession starts no jobs; none of it is about our definition."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        logging.disable(logging.NOTSET)


@contextmanager
def _sdk_defaults_validated_once() -> Iterator[None]:
    """Validate our SDK defaults once, not on every config lookup.

    The SDK re-validates the whole defaults document against its JSON schema on each lookup (about 0.35 s
    each, 40 lookups for one pipeline); the document is a constant, so once is enough.
    """
    from sagemaker.core.config.config_manager import SageMakerConfig

    validate = SageMakerConfig.validate_sagemaker_config
    validate(_SDK_DEFAULTS)

    def validate_unless_ours(sagemaker_config=None):
        if sagemaker_config != _SDK_DEFAULTS:
            validate(sagemaker_config)

    SageMakerConfig.validate_sagemaker_config = staticmethod(validate_unless_ours)
    try:
        yield
    finally:
        SageMakerConfig.validate_sagemaker_config = staticmethod(validate)


@dataclasses.dataclass
class Rendered:
    path: Path
    seconds: float
    from_cache: bool


def render_cached(name: str, settings: PipelineSettings, cache_dir: Path) -> Rendered:
    """The definition file for `settings`, rendered now only if no identical rendering is cached."""
    started = time.perf_counter()
    path = cache_dir / name / f"{_cache_key(name, settings)}.json"
    if path.exists():
        return Rendered(path, time.perf_counter() - started, from_cache=True)
    definition = render(name, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(definition)
    temporary.replace(path)
    return Rendered(path, time.perf_counter() - started, from_cache=False)


def _cache_key(name: str, settings: PipelineSettings) -> str:
    digest = hashlib.sha256()
    for package in SDK_PACKAGES:
        digest.update(f"{package}=={metadata.version(package)}".encode())
    digest.update(json.dumps(dataclasses.asdict(settings), sort_keys=True).encode())
    for path in sorted([*PACKAGE_DIR.glob("*.py"), *(PACKAGE_DIR / name).rglob("*.py"), *(PACKAGE_DIR / name).glob(DEFINITION_FILE)]):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]

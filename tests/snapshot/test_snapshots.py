"""One normalized template snapshot per environment and stack, and one pipeline definition snapshot per
environment and pipeline. Update on purpose: `make snapshot-update`."""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from config import ENVIRONMENTS
from pipeline_code import render
from tests.synth import STACKS, Synthesized

# Asset hashes change whenever any byte of a Lambda's code changes; the code has its own tests.
_ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalized(template: dict) -> dict:
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_template_matches_snapshot(synthesized: Synthesized, snapshot_json, environment, stack):
    assert normalized(synthesized.template(environment, stack)) == snapshot_json


@pytest.mark.parametrize("pipeline", render.pipeline_names())
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_pipeline_definition_matches_snapshot(synthesized: Synthesized, snapshot_json, environment, pipeline):
    """What each environment's pipeline runs, readable: a hyperparameter or step change is a small diff here."""
    assert normalized(synthesized.pipeline_definition(environment, pipeline)) == snapshot_json

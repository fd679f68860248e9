"""The churn model's pipeline: the training pipeline's steps (pipeline_code/training/) on the churn data.

It registers into the churn model's own group, and config starts it on uploads under its own prefix. The
step scripts here are links to training's, so a fix to a step reaches both models; replace a link with a
file of its own when this model's step should differ.
"""

from __future__ import annotations

from pipeline_code.training.pipeline import HYPERPARAMETERS, TRAINING_ENTRY_POINT, build_pipeline

__all__ = ["HYPERPARAMETERS", "TRAINING_ENTRY_POINT", "build_pipeline"]

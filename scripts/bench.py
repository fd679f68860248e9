#!/usr/bin/env python3
"""`make bench`: wall-clock medians of the commands people wait for, on a warm venv.

Prints one line per figure; run it on an otherwise idle machine, the spread between runs is part of the answer.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNS = 3
# Budgets from the foundation issue, for this 2-core machine.
BUDGETS = {"make synth (all environments)": 15.0, "make test": 180.0}


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def render_seconds() -> tuple[float, float]:
    """Seconds the synth spends rendering pipeline definitions: with an empty cache, then a warm one."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from tests.synth import synthesize

    with tempfile.TemporaryDirectory() as work:
        cache = Path(work) / "render-cache"
        seconds = []
        for run in ("cold", "warm"):
            synthesized = synthesize(Path(work) / f"cdk.out-{run}", render_cache=cache)
            seconds.append(sum(stage.model_build.render_seconds for stage in synthesized.stages))
    return seconds[0], seconds[1]


def deployer_figures() -> None:
    """UpdateEndpoint calls per rollout and rollback, and alarm polls before a rollback, from the scenarios."""
    from datetime import datetime, timezone

    from tests.behaviour.deployer_world import deployer_world, synthesized_deployer
    from tests.behaviour.sfn_harness import held_before

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="eu-west-1")
    # moto logs every failed execution at ERROR; the rollbacks here are the point, not news.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as work:
        for strategy in ("variants", "guardrails"):
            template = synthesized_deployer(Path(work) / strategy, strategy=strategy, bake_checks=6)
            with deployer_world(template) as world:
                world.deploy(world.register())
                world.shim.update_calls.clear()
                rollout = world.deploy(world.register())
                rollout_updates = len(world.shim.accepted_update_calls)

                world.shim.update_calls.clear()
                if strategy == "guardrails":
                    world.shim.next_update("silent_rollback")  # SageMaker's own alarm rollback
                    rollback = world.deploy(world.register())
                    polls = "n/a (SageMaker watches the alarms)"
                else:
                    # The alarm goes off in the middle of the bake, just before its second check.
                    with held_before("Bake") as hold:
                        execution = world.start(world.register())
                        hold.reached()
                        raised = datetime.now(timezone.utc)
                        # The rollout left green live, so this canary runs on blue.
                        world.set_alarm(world.alarms["blue-5xx"])
                    rollback = world.wait(execution)
                    entered = [e for e in rollback.history if e["type"].endswith("StateEntered")]
                    rollback_at = next(e["timestamp"] for e in entered if e["stateEnteredEventDetails"]["name"] == "Roll back to the live config")
                    polls = "{} (budget 1)".format(sum(
                        1 for e in entered
                        if e["stateEnteredEventDetails"]["name"] == "Check the canary's alarms" and raised < e["timestamp"] <= rollback_at
                    ))
                rollback_updates = len(world.shim.accepted_update_calls)
                print(
                    f"deployer, {strategy}: UpdateEndpoint calls: {rollout_updates} in a successful rollout ({rollout.status}), "
                    f"{rollback_updates} in a rollback ({rollback.error}); alarm polls between ALARM and the rollback: {polls}; state transitions in the rollout: {len(rollout.states_entered)} with 6 alarm checks"
                )


def main() -> None:
    deployer_figures()
    cold, warm = render_seconds()
    print(f"pipeline rendering during synth (all environments): {cold:.1f} s with an empty cache, {warm:.2f} s cached")
    shutil.rmtree(ROOT / ".cache" / "pipelines", ignore_errors=True)
    print(f"make synth (all environments), empty render cache, 1 run: {timed(['make', '--no-print-directory', 'synth']):.1f} s")
    figures = {
        "make synth (all environments)": ["make", "--no-print-directory", "synth"],
        "make test": ["make", "--no-print-directory", "test"],
    }
    print(f"median of {RUNS} runs, warm venv and render cache")
    for label, command in figures.items():
        runs = [timed(command) for _ in range(RUNS)]
        median = statistics.median(runs)
        verdict = "within" if median <= BUDGETS[label] else "OVER"
        spread = ", ".join(f"{r:.1f}" for r in runs)
        print(f"{label}: {median:.1f} s (runs: {spread}; budget {BUDGETS[label]:.0f} s: {verdict})")


if __name__ == "__main__":
    main()

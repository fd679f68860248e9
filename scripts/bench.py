#!/usr/bin/env python3
"""`make bench`: the figures the issues ask for, each with its budget, on a warm venv.

Prints one line per figure; run it on an otherwise idle machine, the spread between runs is part of the answer.
"""

from __future__ import annotations

import logging
import os
import resource
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
# Budgets for this 2-core machine: make test in seconds (warm); make synth as a multiple of an empty app's synth.
TEST_BUDGET_SECONDS = 45.0
SYNTH_BUDGET_RATIO = 1.1
CDK = str(ROOT / "node_modules" / ".bin" / "cdk")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def children_cpu_seconds() -> float:
    """CPU seconds of every process this one has waited for, and of the processes they waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render_seconds() -> tuple[float, float]:
    """Seconds the synth spends rendering pipeline definitions: with an empty cache, then a warm one."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from tests.synth import synthesize

    with tempfile.TemporaryDirectory() as work:
        cache = Path(work) / "render-cache"
        seconds = []
        for run in ("cold", "warm"):
            synthesized = synthesize(Path(work) / f"cdk.out-{run}", render_cache=cache)
            seconds.append(synthesized.render_seconds)
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


def synth_split() -> dict[str, float]:
    """Where an in-process synth of all environments spends its time (warm render cache)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    # In a process of its own: this one has imported aws-cdk-lib already.
    importing = subprocess.run(
        [sys.executable, "-c", "import time; t = time.perf_counter(); import aws_cdk, stacks.environment; print(time.perf_counter() - t)"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    import aws_cdk as cdk

    from stacks.environment import enable_compliance_checks
    from tests.synth import CONFIG_DIR, RENDER_CACHE, cdk_json_context

    def synth(*, nag: bool, assets: bool) -> tuple[float, float, float]:
        with tempfile.TemporaryDirectory() as outdir:
            context = {**cdk_json_context(), **({} if assets else {"aws:cdk:disable-asset-staging": True})}
            app = cdk.App(outdir=outdir, context=context, builtin_cloud_formation_validation=False)
            began = time.perf_counter()
            from config import ENVIRONMENTS, load_environment
            from stacks.environment import EnvironmentStage

            stages = [EnvironmentStage(app, load_environment(CONFIG_DIR, name), RENDER_CACHE) for name in ENVIRONMENTS]
            if nag:
                enable_compliance_checks(app)
            built = time.perf_counter()
            app.synth()
            rendering = sum(stage.model_build.render_seconds for stage in stages)
            return built - began - rendering, rendering, time.perf_counter() - built

    synth(nag=True, assets=True)  # warms the render cache and jsii's type loading
    construct, rendering, full = synth(nag=True, assets=True)
    _, _, without_nag = synth(nag=False, assets=True)
    _, _, without_assets = synth(nag=True, assets=False)
    return {
        "importing aws-cdk-lib and the stacks (once per process)": float(importing.stdout),
        "constructing the stacks": construct,
        "rendering pipeline definitions (cached)": rendering,
        "cdk-nag": full - without_nag,
        "asset staging": full - without_assets,
        "writing templates and the rest of synth": without_nag - (full - without_assets),
    }


def synth_against_empty_app() -> tuple[float, float]:
    """Medians of `make synth` and of an empty app (one empty stack) through the same CLI and venv."""
    with tempfile.TemporaryDirectory() as work:
        app = Path(work) / "app.py"
        app.write_text("import aws_cdk as cdk\napp = cdk.App()\ncdk.Stack(app, 'Empty')\napp.synth()\n")
        empty = [CDK, "synth", "--quiet", "--no-notices", "--app", f"{sys.executable} {app}", "-o", str(Path(work) / "cdk.out")]
        ours = ["make", "--no-print-directory", "synth"]
        empties, synths = [], []
        for _ in range(RUNS):
            empties.append(timed(empty))
            synths.append(timed(ours))
    return statistics.median(empties), statistics.median(synths)


def main() -> None:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    deployer_figures()
    cold, warm = render_seconds()
    print(f"pipeline rendering during synth (all environments): {cold:.1f} s with an empty cache, {warm:.2f} s cached")
    for part, seconds in synth_split().items():
        print(f"synth split, {part}: {seconds:.2f} s")
    empty, ours = synth_against_empty_app()
    ratio = ours / empty
    verdict = "within" if ratio <= SYNTH_BUDGET_RATIO else "OVER"
    print(
        f"make synth (all environments): {ours:.1f} s, an empty app through the same CLI {empty:.1f} s "
        f"(medians of {RUNS}): {ratio:.2f} x (budget {SYNTH_BUDGET_RATIO} x: {verdict})"
    )
    # Wall time on a machine others use too is partly their time; the CPU time is the suite's own.
    cpu_before = children_cpu_seconds()
    runs = [timed(["make", "--no-print-directory", "test"]) for _ in range(RUNS)]
    cpu = (children_cpu_seconds() - cpu_before) / RUNS
    median = statistics.median(runs)
    verdict = "within" if median <= TEST_BUDGET_SECONDS else "OVER"
    spread = ", ".join(f"{r:.1f}" for r in runs)
    print(
        f"make test: {median:.1f} s (median of {RUNS}, warm; runs: {spread}; budget {TEST_BUDGET_SECONDS:.0f} s: {verdict}); "
        f"{cpu:.0f} s of CPU per run, about {cpu / (os.cpu_count() or 1):.0f} s of wall time on {os.cpu_count()} idle cores"
    )


if __name__ == "__main__":
    main()

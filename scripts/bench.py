#!/usr/bin/env python3
"""`make bench`: the figures the issues ask for, each with its budget, on a warm venv.

Prints one line per figure; run it on an otherwise idle machine, the spread between runs is part of the answer.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNS = 3
# make synth is short and the machine is shared: more runs steady its median.
SYNTH_RUNS = 5
# Budgets for this 2-core machine: make test in seconds (warm); make synth as a multiple of an empty app's synth.
TEST_BUDGET_SECONDS = 45.0
SYNTH_BUDGET_RATIO = 1.1
CDK = str(ROOT / "node_modules" / ".bin" / "cdk")
MAKE_SYNTH = ["make", "--no-print-directory", "synth"]
# One environment, as `make deploy|diff|destroy ENV=...` construct it: prod, the one with the most resources.
ONE_ENVIRONMENT = "prod"
MAKE_SYNTH_ONE = [*MAKE_SYNTH, f"ENV={ONE_ENVIRONMENT}"]
# Budget for a one-environment synth: no slower than the empty app `cdk init` writes.
ONE_ENVIRONMENT_BUDGET_RATIO = 1.0
# Where app.py keeps aws-cdk-lib's kernel and its compiled code (stacks/jsii_direct_kernel.py).
KERNEL_CACHE = ROOT / ".cache" / "jsii-kernel"


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
            synthesized = synthesize(Path(work) / f"cdk.out-{run}", render_cache=cache, reuse=False)
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
            # dev serves serverless; the canary on variants and guardrails is dev on instances, as staging serves.
            template = synthesized_deployer(Path(work) / strategy, strategy=strategy, bake_checks=6, serving={"mode": "instances"})
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


def batch_inference_figures() -> None:
    """State transitions and AWS calls of one successful batch inference run, from the behaviour scenario."""
    from tests.behaviour.batch_world import IMAGE_TAG, batch_world, synthesized_batch_workflow

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="eu-west-1")
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as work:
        template = synthesized_batch_workflow(Path(work), image_tag=IMAGE_TAG)
        with batch_world(template) as world:
            world.register()
            latest = world.score()
            package, _ = world.register()
            named = world.score(model_package_arn=package)
    for label, run in (("latest approved model", latest), ("named model package", named)):
        calls = [e["taskScheduledEventDetails"] for e in run.events("TaskScheduled")]
        jobs = sum(1 for call in calls if call["resource"].endswith(".sync"))
        print(
            f"batch inference, {label}: {run.status}; state transitions: {len(run.states_entered)}; "
            f"AWS calls by task states: {len(calls)} ({len(calls) - jobs} to the model registry, {jobs} CreateProcessingJob); "
            "a .sync job is then tracked by Step Functions, not by polling states"
        )


# Batch inference at scale (issue 21): the bundled breast-cancer data repeated 1,760 times with noise.
BATCH_BENCH_DIR = ROOT / ".bench" / "batch-scale"
BATCH_REPEATS = 1760
BATCH_NOISE_SEED = 21
# What the three scripts end to end may take, as a multiple of the one-process reference; and each step's peak
# memory, beyond the model's own size.
BATCH_BUDGET_RATIO = 1.5
BATCH_MEMORY_BOUND_BYTES = 512 * 2**20
BATCH_CODE = ROOT / "pipeline_code" / "batch_inference"
# The work itself in one process, as issue 21 measured it: read the CSV once, predict_proba once, write the
# predictions once.
BATCH_REFERENCE = """
import json, sys, tarfile, tempfile
from pathlib import Path
import joblib, numpy as np, pandas as pd
input_csv, model_archive, output_csv = sys.argv[1:]
with tempfile.TemporaryDirectory() as unpacked, tarfile.open(model_archive) as tar:
    tar.extractall(unpacked, filter="data")
    model = joblib.load(Path(unpacked) / "model.joblib")
    features = json.loads((Path(unpacked) / "features.json").read_text())
data = pd.read_csv(input_csv)
probabilities = model.predict_proba(data[features])
labels = model.classes_[probabilities.argmax(axis=1)]
pd.DataFrame({"row": np.arange(len(data)), "prediction": labels, "positive_probability": probabilities[:, 1],
              "is_positive": (labels == model.classes_[1]).astype(int)}).to_csv(output_csv, index=False)
"""
# Runs a script as `python3 script.py ...` would, then reports the process's peak resident memory (the kernel's
# VmHWM: getrusage's ru_maxrss of a child starts at the peak of the process that started it).
PEAK_MEMORY_WRAPPER = """
import re, runpy, sys
from pathlib import Path
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    peak_kb = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)
    sys.stderr.write(f"\\npeak-memory-kb {peak_kb}\\n")
"""


@dataclass
class Measured:
    seconds: float
    cpu_seconds: float  # user + system: on a machine others load too, the part of the wall time that is ours
    peak_bytes: int
    stdout: str


def measured_run(script: Path, arguments: list[str], *, one_core: bool = False) -> Measured:
    """Wall seconds and peak memory of `python3 script arguments...` in a process of its own."""
    command = [sys.executable, "-c", PEAK_MEMORY_WRAPPER, str(script), *arguments]
    if one_core:
        command = ["taskset", "--cpu-list", str(min(os.sched_getaffinity(0))), *command]
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{script.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    peak_kb = int(result.stderr.rsplit("peak-memory-kb ", 1)[1])
    return Measured(seconds, children_cpu_seconds() - cpu_before, peak_kb * 1024, result.stdout.strip())


def batch_bench_inputs() -> tuple[Path, Path]:
    """The 1,001,440-row CSV and the training pipeline's model.tar.gz, made once and kept under .bench/."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    from sklearn.datasets import load_breast_cancer

    from tests.pipeline_code.model_artifact import train_model_artifact

    data = load_breast_cancer(as_frame=True).frame
    # The generator's version and parameters: a change makes new files instead of reusing stale ones.
    stamp = f"v1 repeats={BATCH_REPEATS} seed={BATCH_NOISE_SEED} rows={len(data)}"
    input_csv = BATCH_BENCH_DIR / "input" / "breast-cancer-repeated.csv"
    model_archive = BATCH_BENCH_DIR / "training" / "artifact" / "model.tar.gz"
    stamp_file = BATCH_BENCH_DIR / "stamp"
    if stamp_file.is_file() and stamp_file.read_text() == stamp and input_csv.is_file() and model_archive.is_file():
        return input_csv, model_archive
    shutil.rmtree(BATCH_BENCH_DIR, ignore_errors=True)
    features = data.drop(columns="target")
    values = np.tile(features.to_numpy(), (BATCH_REPEATS, 1))
    values *= 1 + np.random.default_rng(BATCH_NOISE_SEED).normal(0, 0.01, values.shape)
    table = pa.table({**{column: values[:, index] for index, column in enumerate(features.columns)}, "target": np.tile(data["target"].to_numpy(), BATCH_REPEATS)})
    input_csv.parent.mkdir(parents=True)
    pa_csv.write_csv(table, input_csv)
    # The pipeline's own preprocess and train steps, with the pipeline's hyperparameters (the train step's defaults);
    # what they print is not a figure.
    with contextlib.redirect_stdout(io.StringIO()):
        train_model_artifact(data, BATCH_BENCH_DIR / "training")
    stamp_file.write_text(stamp)
    return input_csv, model_archive


def batch_scripts_end_to_end(input_csv: Path, model_archive: Path, work: Path, *, one_core: bool = False) -> dict[str, Measured]:
    """The three scripts as the workflow chains them, on one instance."""
    run = {name: work / name for name in ("preprocessed", "predictions", "output")}
    for folder in run.values():
        shutil.rmtree(folder, ignore_errors=True)
    message = ["--failure-message-file", str(work / "message")]
    return {
        "preprocessing.py": measured_run(BATCH_CODE / "preprocessing.py", ["--input-dir", str(input_csv.parent), "--output-dir", str(run["preprocessed"]), *message], one_core=one_core),
        "predict.py": measured_run(
            BATCH_CODE / "predict.py",
            ["--input-dir", str(run["preprocessed"]), "--model-dir", str(model_archive.parent), "--output-dir", str(run["predictions"]), *message],
            one_core=one_core,
        ),
        "postprocessing.py": measured_run(BATCH_CODE / "postprocessing.py", ["--input-dir", str(run["predictions"]), "--output-dir", str(run["output"]), *message], one_core=one_core),
    }


def gigabytes(size: int) -> str:
    return f"{size / 2**30:.2f} GB"


def batch_scale_figures(rounds: int = 2) -> None:
    """The three batch scripts on 1,001,440 rows against the one-process reference, side by side, each step's
    peak memory, and the speed-up from one core to all of them."""
    input_csv, model_archive = batch_bench_inputs()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(dir=BATCH_BENCH_DIR) as work_dir:
        work = Path(work_dir)
        reference_script = work / "reference.py"
        reference_script.write_text(BATCH_REFERENCE)
        references, scripts = [], []
        # Interleaved, so that load from other processes falls on both alike; the best of each.
        for _ in range(rounds):
            references.append(measured_run(reference_script, [str(input_csv), str(model_archive), str(work / "reference.csv")]))
            scripts.append(batch_scripts_end_to_end(input_csv, model_archive, work))
        one_core = batch_scripts_end_to_end(input_csv, model_archive, work, one_core=True)
        summary = json.loads((work / "output" / "summary.json").read_text())
    reference = min(references, key=lambda measured: measured.seconds)
    steps = min(scripts, key=lambda run: sum(measured.seconds for measured in run.values()))
    total = sum(measured.seconds for measured in steps.values())
    total_cpu = sum(measured.cpu_seconds for measured in steps.values())
    one_core_total = sum(measured.seconds for measured in one_core.values())
    with tarfile.open(model_archive) as tar:
        model_bytes = tar.getmember("model.joblib").size
    bound = BATCH_MEMORY_BOUND_BYTES + model_bytes
    ratio = total / reference.seconds
    print(
        f"batch inference at scale: {summary['rows']:,} rows x 30 features ({input_csv.stat().st_size / 2**20:.0f} MB of CSV), the training "
        f"pipeline's random forest, on {cores} cores (best of {rounds} interleaved runs each):"
    )
    print(
        f"  the work itself in one process (read the CSV, predict_proba once, write the predictions): {reference.seconds:.1f} s "
        f"({reference.cpu_seconds:.1f} s CPU), peak {gigabytes(reference.peak_bytes)}"
    )
    for name, measured in steps.items():
        verdict = "within" if measured.peak_bytes <= bound else "OVER"
        print(f"  {name}: {measured.seconds:.1f} s ({measured.cpu_seconds:.1f} s CPU), peak {gigabytes(measured.peak_bytes)} ({verdict} 512 MB + the model's {model_bytes / 2**20:.1f} MB); {measured.stdout.splitlines()[-1]}")
    print(
        f"  the three scripts end to end: {total:.1f} s = {ratio:.2f} x the one-process reference (budget {BATCH_BUDGET_RATIO} x: "
        f"{'within' if ratio <= BATCH_BUDGET_RATIO else 'OVER'}); {total_cpu:.1f} s CPU = {total_cpu / reference.cpu_seconds:.2f} x the reference's; "
        f"{summary['rows'] / total:,.0f} rows/s on this {cores}-core machine (load average {os.getloadavg()[0]:.1f} at the end)"
    )
    print(
        f"  on 1 core (taskset): {one_core_total:.1f} s end to end "
        f"({', '.join(f'{name} {measured.seconds:.1f} s' for name, measured in one_core.items())}); "
        f"{cores} cores are {one_core_total / total:.2f} x as fast"
    )


def synth_split() -> dict[str, float]:
    """Where a synth of all environments spends its time (warm render and kernel caches), in wall seconds:
    measured in a process of its own, run as cdk.json runs the app (`python -O`, without jsii's run-time type
    checks) and with aws-cdk-lib's kernel started as app.py starts it."""
    measured = subprocess.run(
        [sys.executable, "-O", __file__, "--synth-split"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(measured.stdout)


def _synth_split_in_this_process() -> dict[str, float]:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    # In a process of its own: this one is about to import aws-cdk-lib.
    importing = subprocess.run(
        [
            sys.executable,
            "-O",
            "-c",
            "import time; from pathlib import Path; from stacks.jsii_direct_kernel import direct_kernel\n"
            f"with direct_kernel(Path({str(KERNEL_CACHE)!r})):\n    t = time.perf_counter(); import aws_cdk; u = time.perf_counter()\n"
            "import stacks.environment; print(u - t, time.perf_counter() - u)",
        ],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    importing_cdk, importing_ours = map(float, importing.stdout.split())
    from stacks.jsii_direct_kernel import direct_kernel

    with direct_kernel(KERNEL_CACHE):
        from stacks.environment import enable_compliance_checks, new_app
    from tests.synth import RENDER_CACHE, cdk_json_context

    def synth(*, nag: bool, assets: bool) -> tuple[float, float, float]:
        with tempfile.TemporaryDirectory() as outdir:
            context = {**cdk_json_context(), **({} if assets else {"aws:cdk:disable-asset-staging": True})}
            app = new_app(outdir=outdir, context=context)
            began = time.perf_counter()
            from config import ENVIRONMENTS, load_environment
            from stacks.environment import EnvironmentStage

            # The user's config/, as `make synth` reads it.
            stages = [EnvironmentStage(app, load_environment(ROOT / "config", name), RENDER_CACHE) for name in ENVIRONMENTS]
            if nag:
                enable_compliance_checks(app)
            built = time.perf_counter()
            app.synth()
            rendering = sum(stage.model_build.render_seconds for stage in stages)
            return built - began - rendering, rendering, time.perf_counter() - built

    # The first synth in a process also loads the aws-cdk-lib modules the stacks use into jsii's node process,
    # runs their code cold and warms the render cache: what it costs over the second is the first use.
    first_construct, _, first_full = synth(nag=True, assets=True)
    construct, rendering, full = synth(nag=True, assets=True)
    _, _, without_nag = synth(nag=False, assets=True)
    _, _, without_assets = synth(nag=True, assets=False)
    return {
        "importing aws-cdk-lib (the empty app imports it too)": importing_cdk,
        "importing our stacks and the aws-cdk-lib modules they use": importing_ours,
        "first use of those modules in jsii's node process (loading, cold code; a fresh process pays it)": max(0.0, first_construct + first_full - construct - full),
        "constructing the stacks": construct,
        "rendering pipeline definitions (cached)": rendering,
        "cdk-nag": full - without_nag,
        "asset staging": full - without_assets,
        "writing templates and the rest of synth": without_nag - (full - without_assets),
    }


@dataclass
class Timing:
    wall: float
    cpu: float  # user + system seconds of the command and every process it waited for (CLI, app, jsii's node)


def timed_with_cpu(command: list[str]) -> Timing:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(command)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Timing(wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def median_timing(timings: list[Timing]) -> Timing:
    return Timing(statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings))


# Built as app.py builds its App: without aws-cdk-lib's built-in CloudFormation validation, which costs
# about 2 s even for one empty stack and which the app turns off.
EMPTY_APP = "import aws_cdk as cdk\napp = cdk.App(builtin_cloud_formation_validation=False)\ncdk.Stack(app, 'Empty')\napp.synth()\n"
# The empty app as `cdk init` writes it, validation on: the comparison the budget was first measured against.
# It runs with the version report on, as it was then: the report's resource is the stack's only one, and
# the validation fails a stack without resources.
DEFAULT_EMPTY_APP = "import aws_cdk as cdk\napp = cdk.App()\ncdk.Stack(app, 'Empty')\napp.synth()\n"


def synth_against_empty_app() -> dict[str, Timing]:
    """Medians of `make synth` and of empty apps (one empty stack) through the same CLI, venv and cdk.json,
    run in turn so that load from other processes falls on each alike."""
    with tempfile.TemporaryDirectory() as work:
        commands = {}
        for name, source, options in (("empty", EMPTY_APP, []), ("default empty", DEFAULT_EMPTY_APP, ["--version-reporting"])):
            app = Path(work) / f"{name.replace(' ', '_')}.py"
            app.write_text(source)
            commands[name] = [CDK, "synth", "--quiet", "--no-notices", *options, "--app", f"{sys.executable} {app}", "-o", str(Path(work) / "cdk.out")]
        commands["ours"] = MAKE_SYNTH
        commands["one environment"] = MAKE_SYNTH_ONE
        runs: dict[str, list[Timing]] = {name: [] for name in commands}
        for _ in range(SYNTH_RUNS):
            for name, command in commands.items():
                runs[name].append(timed_with_cpu(command))
    return {name: median_timing(timings) for name, timings in runs.items()}


def main() -> None:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    deployer_figures()
    batch_inference_figures()
    batch_scale_figures()
    cold, warm = render_seconds()
    print(f"pipeline rendering during synth (all environments): {cold:.1f} s with an empty cache, {warm:.2f} s cached")
    figures = synth_against_empty_app()
    empty, ours, default = figures["empty"], figures["ours"], figures["default empty"]
    print(
        f"make synth (all environments, run as cdk.json runs the app: python -O): {ours.wall:.1f} s wall, {ours.cpu:.1f} s CPU "
        f"(medians of {SYNTH_RUNS}, each run beside the empty apps below through the same CLI, venv and cdk.json)"
    )
    for label, reference in (
        ("the empty app as `cdk init` writes it (aws-cdk-lib's built-in validation on), the budget's own reference", default),
        ("an empty app built like app.py's (built-in validation off)", empty),
    ):
        ratio = ours.wall / reference.wall
        verdict = "within" if ratio <= SYNTH_BUDGET_RATIO else "OVER"
        print(
            f"  against {label}: {reference.wall:.1f} s wall, {reference.cpu:.1f} s CPU: {ratio:.2f} x wall, "
            f"{ours.cpu / reference.cpu:.2f} x CPU (budget {SYNTH_BUDGET_RATIO} x: {verdict}; our own work beyond it "
            f"{ours.wall - reference.wall:.1f} s wall against a budget of {(SYNTH_BUDGET_RATIO - 1) * reference.wall:.2f} s)"
        )
    one = figures["one environment"]
    ratio = one.wall / default.wall
    verdict = "within" if ratio <= ONE_ENVIRONMENT_BUDGET_RATIO else "OVER"
    print(
        f"make synth ENV={ONE_ENVIRONMENT} (one environment, as deploy/diff/destroy construct it): {one.wall:.1f} s wall, {one.cpu:.1f} s CPU; "
        f"against the empty app as `cdk init` writes it: {ratio:.2f} x wall, {one.cpu / default.cpu:.2f} x CPU "
        f"(budget {ONE_ENVIRONMENT_BUDGET_RATIO} x: {verdict})"
    )
    print("  where a synth of all environments in one process spends its time (wall, warm render cache):")
    for part, seconds in synth_split().items():
        print(f"    {part}: {seconds:.2f} s")
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
    if sys.argv[1:] == ["--synth-split"]:
        print(json.dumps(_synth_split_in_this_process()))
    elif sys.argv[1:] == ["--batch-scale"]:
        batch_scale_figures()
    else:
        main()

#!/usr/bin/env python3
"""The CDK app: one Stage per environment, each configured by config/<env>.yaml.

`-c env=<name>` (as `make deploy|diff|destroy ENV=<name>` pass it) constructs that environment alone;
without it, every environment is constructed.
"""

import gc
import sys
from pathlib import Path

# A synth is one short process that builds a large tree of objects and keeps nearly all of them until it ends.
# The cyclic garbage collector would walk that tree again and again while it grows (about a quarter of a
# one-environment synth's Python time) and find little to free; memory stays the same without it.
gc.disable()

from config import ConfigError  # noqa: E402
from config.naming import PipelineFolderError  # noqa: E402
from stacks.jsii_direct_kernel import direct_kernel  # noqa: E402

ROOT = Path(__file__).resolve().parent
# aws-cdk-lib's node process starts with its first import, here.
with direct_kernel(ROOT / ".cache" / "jsii-kernel"):
    from stacks.environment import add_environments, new_app, selected_environments, write_pipeline_definitions

app = new_app()
try:
    names = selected_environments(app.node.try_get_context("env"))
    # Rendered pipeline definitions are cached next to the sources, outside cdk.out (which synth rewrites).
    stages = add_environments(app, ROOT / "config", ROOT / ".cache" / "pipelines", names)
except ConfigError as error:
    # The message names the file, the key and what is accepted; a traceback would only bury it.
    sys.exit(f"Invalid configuration: {error}")
except PipelineFolderError as error:
    sys.exit(f"Invalid pipeline folder: {error}")
app.synth()
write_pipeline_definitions(Path(app.outdir), stages)
# Everything the synth made dies with the process; the interpreter's last collections over it would only
# delay the CLI (about 0.2 s).
gc.freeze()

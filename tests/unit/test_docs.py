"""The README and the documentation site in docs/ name only make targets, config keys, stack ids and files
that exist, lead nowhere outside the repository, build with strict link checking, and the README's first
screen leads to every task."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import typing
from pathlib import Path

from markdown.extensions.toc import slugify
from pydantic import BaseModel

from config import ENVIRONMENTS, EnvironmentConfig
from tests.synth import ROOT, STACKS

README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
PAGES = {path.relative_to(ROOT).as_posix(): path.read_text() for path in sorted(DOCS.rglob("*.md"))}
# Everything a reader may copy from: the README and every page of the site.
DOCUMENTS = {"README.md": README, **PAGES}
REFERENCE = PAGES["docs/reference/configuration.md"]
# Made by set-up, synth or the tests, so a fresh clone does not have them yet.
GENERATED = {".venv", "node_modules", "cdk.out", ".cache", ".bench", ".pytest_cache", "site"}
FENCE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")
# What a new user looks for on the README's first screen, and where each is answered.
FIRST_SCREEN_LINES = 60
TASKS = {
    "put in your own accounts and deploy": "docs/getting-started.md#put-in-your-own-accounts",
    "upload training data": "docs/first-day.md#upload-training-data",
    "find a bucket or an output": "docs/first-day.md#find-your-buckets-and-outputs",
    "watch a run": "docs/first-day.md#watch-the-run",
    "approve a model": "docs/first-day.md#approve-the-model",
    "watch a canary": "docs/first-day.md#watch-the-canary",
    "answer the prod gate": "docs/guides/reviewer-and-release-manager.md#answer-the-prod-gate",
    "call the endpoint": "docs/first-day.md#call-the-endpoint",
    "open Studio": "docs/first-day.md#open-studio",
    "run a batch": "docs/first-day.md#run-a-batch",
    "the platform engineer's guide": "docs/guides/platform-engineer.md",
    "the data scientist's guide": "docs/guides/data-scientist.md",
    "the reviewer's and release manager's guide": "docs/guides/reviewer-and-release-manager.md",
    "the batch user's guide": "docs/guides/batch-user.md",
}


def _headings(text: str) -> list[tuple[int, str, str]]:
    """(level, title, the text up to the next heading) for every heading outside code blocks."""
    text = FENCE.sub("", text)
    matches = list(re.finditer(r"^(#+) (.+)$", text, re.MULTILINE))
    ends = [m.start() for m in matches[1:]] + [len(text)]
    return [(len(m.group(1)), m.group(2), text[m.end():end]) for m, end in zip(matches, ends)]


def _anchors(text: str) -> set[str]:
    """The ids MkDocs (Python-Markdown's toc) and GitHub give the headings."""
    return {slugify(re.sub(r"`", "", title), "-") for _, title, _ in _headings(text)}


def _prose_links(text: str) -> list[str]:
    return LINK.findall(re.sub(r"`[^`\n]+`", "", FENCE.sub("", text)))


def _inline_code() -> list[str]:
    return [code for text in DOCUMENTS.values() for code in re.findall(r"`([^`\n]+)`", FENCE.sub("", text))]


def _shell_lines() -> list[str]:
    return [
        line
        for text in DOCUMENTS.values()
        for language, body in FENCE.findall(text) if language == "sh"
        for line in body.splitlines()
    ]


def _words() -> list[str]:
    """Every word a reader could copy: of inline code and of the shell blocks."""
    return [word.strip("'\",;()") for text in [*_inline_code(), *_shell_lines()] for word in text.split()]


def _layout_paths() -> list[str]:
    """The paths the Layout section lists: `dir/` lines, then names indented under them."""
    development = PAGES["docs/development.md"]
    block = FENCE.search(development, development.index("\n## Layout\n")).group(2)
    paths, parent = [], ""
    for line in block.splitlines():
        names = re.split(r"\s{2,}", line.strip())[0].split()
        indented = line.startswith(" ")
        paths += [f"{parent}{name}" if indented else name for name in names]
        if not indented:
            parent = names[0] if names[0].endswith("/") else ""
    return paths


def _repository_path(word: str) -> bool:
    """A word that names a file or folder of this repository (not a placeholder, glob or generated file)."""
    if not re.fullmatch(r"\.?[\w-]+(\.[\w.-]+)?(/[\w.-]+)*/?", word):
        return False
    first = word.split("/")[0]
    return first not in GENERATED and (ROOT / first).exists()


def _inside_the_repository(path: Path) -> bool:
    return path.exists() and path.resolve().is_relative_to(ROOT)


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return {
        target
        for line in re.findall(r"^([\w. -]+):(?!=)", makefile, re.MULTILINE)
        for target in line.split()
    }


def _fields(model: type[BaseModel]) -> dict[str, typing.Any]:
    return {name: field.annotation for name, field in model.model_fields.items() if not field.exclude}


def _sub_model(annotation: typing.Any) -> type[BaseModel] | None:
    """The model a field holds, directly, in a list, as the values of a mapping or as an optional value."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        if typing.get_origin(candidate) in (list, typing.Annotated):
            return _sub_model(typing.get_args(candidate)[0])
        if typing.get_origin(candidate) is dict:
            return _sub_model(typing.get_args(candidate)[1])
    return None


def _model_keys(model: type[BaseModel] = EnvironmentConfig, prefix: str = "") -> list[str]:
    """Every key the config accepts, dotted, with `[]` after a list of mappings (studio.users[].name)."""
    keys = []
    for name, annotation in _fields(model).items():
        keys.append(prefix + name)
        if sub_model := _sub_model(annotation):
            keys += _model_keys(sub_model, prefix + name + ("[]." if typing.get_origin(annotation) is list else "."))
    return keys


def _config_key_exists(dotted: str) -> bool:
    model: type[BaseModel] | None = EnvironmentConfig
    for part in dotted.replace("[]", "").split("."):
        fields = _fields(model) if model else {}
        if part not in fields:
            return False
        model = _sub_model(fields[part])
    return True


def _reference_table_keys() -> list[str]:
    """The first column of every table in the configuration reference, as dotted keys."""
    keys = []
    for level, title, body in _headings(REFERENCE):
        section = re.fullmatch(r"`([\w.\[\]<>]+)`", title)
        if not (level == 3 and (section or title == "Top level")):
            continue
        # `model_build.pipelines.<name>` documents the keys of every entry of a mapping.
        parent = f"{section.group(1).replace('.<name>', '')}." if section else ""
        for row in re.findall(r"^\| (`[^|]+) \|", body, re.MULTILINE):
            first, *others = re.findall(r"`([\w.]+)`", row)
            keys.append(parent + first)
            # `autoscaling.min_capacity` / `max_capacity`: the second key shares the first one's parent.
            keys += [parent + first.rpartition(".")[0] + "." + other for other in others]
    return keys


def test_every_make_target_the_docs_name_exists():
    named = {
        next(word for word in command.split() if "=" not in word)
        for text in [*_inline_code(), *_shell_lines()]
        for command in re.findall(r"(?:^|\s)make ((?:\S+ ?)+)", text)
    }

    assert {"synth", "test", "outputs"} <= named
    assert named - _make_targets() == set()


def test_every_config_key_in_the_reference_exists():
    keys = _reference_table_keys()

    assert len(keys) > 50
    assert [key for key in keys if not _config_key_exists(key)] == []


def test_every_dotted_config_key_in_the_text_exists():
    top_level = "|".join(_fields(EnvironmentConfig))
    dotted = {word for word in _inline_code() if re.fullmatch(rf"({top_level})(\.\w+)+(\[\])?", word)}

    assert dotted
    assert [key for key in sorted(dotted) if not _config_key_exists(key)] == []


def test_every_key_value_example_uses_a_config_key():
    examples = {m.group(1) for code in _inline_code() if (m := re.fullmatch(r"([a-z_0-9]+): \S+", code))}

    assert examples
    assert examples - {key.rpartition(".")[2] for key in _model_keys()} == set()


def test_every_repository_path_the_docs_name_exist():
    paths = {word for word in _words() if _repository_path(word)}

    assert {"config/settings.py", "stacks/environment.py", "pipeline_code/training/preprocess.py"} <= paths
    assert [path for path in sorted(paths) if not (ROOT / path).exists()] == []


def test_every_path_in_the_layout_exists():
    paths = _layout_paths()

    assert {"app.py", "config/settings.py", "stacks/network.py", "mlops_constructs/canary_deployer/"} <= set(paths)
    assert [path for path in paths if not (ROOT / path).exists()] == []


def test_every_stack_id_the_docs_name_exists():
    ids = {word for word in _words() if re.fullmatch(rf"({'|'.join(ENVIRONMENTS)})/[\w-]+", word)}

    assert "dev/studio" in ids
    assert [stack_id for stack_id in sorted(ids) if stack_id.partition("/")[2] not in STACKS] == []


def test_readme_links_lead_to_files_of_the_repository_and_their_headings():
    targets = _prose_links(README)
    files = [target.partition("#")[0] for target in targets]
    broken_anchors = [
        target for target in targets
        if "#" in target and target.partition("#")[2] not in _anchors((ROOT / target.partition("#")[0]).read_text())
    ]

    assert "docs/first-day.md#run-a-batch" in targets
    assert [target for target in files if ":" in target or not _inside_the_repository(ROOT / target)] == []
    assert broken_anchors == []


def test_the_readme_first_screen_links_to_every_task_and_role_guide():
    first_screen = "\n".join(README.splitlines()[:FIRST_SCREEN_LINES])

    links = set(_prose_links(first_screen))

    assert {task: target for task, target in TASKS.items() if target not in links} == {}


def test_the_site_builds_with_strict_link_and_anchor_checks(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "first-day" / "index.html").exists()


def test_every_page_is_in_the_site_navigation():
    navigation = (ROOT / "mkdocs.yml").read_text()

    assert [page for page in PAGES if f": {Path(page).relative_to('docs').as_posix()}\n" not in navigation] == []


def _without_links_inside_the_site(path: str, text: str) -> str:
    """A page of docs/ reaches pages of a parent folder through it, staying inside docs/."""
    if not (path.startswith("docs/") and path.endswith(".md")):
        return text
    folder = (ROOT / path).parent

    def inside(match: re.Match[str]) -> str:
        target = folder.joinpath(match.group(1).partition("#")[0]).resolve()
        return "]()" if target.is_relative_to(DOCS) else match.group(0)

    return re.sub(r"\]\((\.\./[^)\s]*)\)", inside, text)


def test_no_tracked_file_refers_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    texts = [
        path for path in tracked
        if path != "package-lock.json" and "__snapshots__" not in path and (ROOT / path).is_file()
    ]

    parent_directory = re.compile(r"\.\./")
    assert [
        path for path in texts
        if parent_directory.search(_without_links_inside_the_site(path, (ROOT / path).read_text(errors="ignore")))
    ] == []


def test_the_reference_lists_every_config_key():
    listed = _reference_table_keys()

    # A mapping such as deployment.alarms is documented by the rows of its keys.
    assert [key for key in _model_keys() if key not in listed and not any(row.startswith(f"{key}.") for row in listed)] == []


def test_step_script_options_in_the_docs_exist():
    commands = [line.split() for line in "\n".join(_shell_lines()).replace("\\\n", " ").splitlines()]
    uses = {
        (words[1], option)
        for words in commands if words[:1] == [".venv/bin/python"] and words[1].endswith(".py")
        for option in words if option.startswith("--")
    }

    assert {script for script, _ in uses} >= {"pipeline_code/training/preprocess.py", "pipeline_code/training/evaluate.py"}
    assert [(script, option) for script, option in sorted(uses) if f'"{option}"' not in (ROOT / script).read_text()] == []

"""The README names only make targets, config keys, stack ids and files that exist, and leads nowhere outside
the repository."""

from __future__ import annotations

import re
import subprocess
import typing
from pathlib import Path

from pydantic import BaseModel

from config import ENVIRONMENTS, EnvironmentConfig
from tests.synth import ROOT, STACKS

README = (ROOT / "README.md").read_text()
# Made by set-up, synth or the tests, so a fresh clone does not have them yet.
GENERATED = {".venv", "node_modules", "cdk.out", ".cache", ".bench", ".pytest_cache"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _headings() -> list[tuple[int, str, str]]:
    """(level, title, the text up to the next heading) for every heading outside code blocks."""
    text = FENCE.sub("", README)
    matches = list(re.finditer(r"^(#+) (.+)$", text, re.MULTILINE))
    ends = [m.start() for m in matches[1:]] + [len(text)]
    return [(len(m.group(1)), m.group(2), text[m.end():end]) for m, end in zip(matches, ends)]


def _inline_code() -> list[str]:
    return re.findall(r"`([^`\n]+)`", FENCE.sub("", README))


def _shell_lines() -> list[str]:
    return [line for language, body in FENCE.findall(README) if language == "sh" for line in body.splitlines()]


def _words() -> list[str]:
    """Every word a reader could copy: of inline code and of the shell blocks."""
    return [word.strip("'\",;()") for text in [*_inline_code(), *_shell_lines()] for word in text.split()]


def _layout_paths() -> list[str]:
    """The paths the Layout section lists: `dir/` lines, then names indented under them."""
    block = FENCE.search(README, README.index("\n## Layout\n")).group(2)
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
    """The model a field holds, directly, in a list or as an optional value."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        if typing.get_origin(candidate) is list:
            return _sub_model(typing.get_args(candidate)[0])
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
    for level, title, body in _headings():
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


def test_every_make_target_the_readme_names_exists():
    named = {
        next(word for word in command.split() if "=" not in word)
        for text in [*_inline_code(), *_shell_lines()]
        for command in re.findall(r"(?:^|\s)make ((?:\S+ ?)+)", text)
    }

    assert named, "the README names no make target"
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


def test_every_repository_path_the_readme_names_exists():
    paths = {word for word in _words() if _repository_path(word)}

    assert {"config/settings.py", "stacks/environment.py", "pipeline_code/training/preprocess.py"} <= paths
    assert [path for path in sorted(paths) if not (ROOT / path).exists()] == []


def test_every_path_in_the_layout_exists():
    paths = _layout_paths()

    assert {"app.py", "config/settings.py", "stacks/network.py", "mlops_constructs/canary_deployer/"} <= set(paths)
    assert [path for path in paths if not (ROOT / path).exists()] == []


def test_every_stack_id_the_readme_names_exists():
    ids = {word for word in _words() if re.fullmatch(rf"({'|'.join(ENVIRONMENTS)})/[\w-]+", word)}

    assert "dev/studio" in ids
    assert [stack_id for stack_id in sorted(ids) if stack_id.partition("/")[2] not in STACKS] == []


def test_links_lead_to_headings_of_the_readme_or_files_of_the_repository():
    anchors = {
        re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-") for _, title, _ in _headings()
    }
    prose = re.sub(r"`[^`\n]+`", "", FENCE.sub("", README))
    targets = re.findall(r"\]\(([^)]+)\)", prose)

    in_page = [target for target in targets if target.startswith("#")]
    files = [target for target in targets if not target.startswith("#")]

    assert in_page
    assert [target for target in in_page if target[1:] not in anchors] == []
    assert [target for target in files if ":" in target or not _inside_the_repository(ROOT / target)] == []


def test_no_tracked_file_refers_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    texts = [
        path for path in tracked
        if path != "package-lock.json" and "__snapshots__" not in path and (ROOT / path).is_file()
    ]

    parent_directory = re.compile(r"\.\./")
    assert [path for path in texts if parent_directory.search((ROOT / path).read_text(errors="ignore"))] == []


def test_the_reference_lists_every_config_key():
    listed = _reference_table_keys()

    # A mapping such as deployment.alarms is documented by the rows of its keys.
    assert [key for key in _model_keys() if key not in listed and not any(row.startswith(f"{key}.") for row in listed)] == []


def test_step_script_options_in_the_readme_exist():
    commands = [line.split() for line in "\n".join(_shell_lines()).replace("\\\n", " ").splitlines()]
    uses = {
        (words[1], option)
        for words in commands if words[:1] == [".venv/bin/python"] and words[1].endswith(".py")
        for option in words if option.startswith("--")
    }

    assert {script for script, _ in uses} >= {"pipeline_code/training/preprocess.py", "pipeline_code/training/evaluate.py"}
    assert [(script, option) for script, option in sorted(uses) if f'"{option}"' not in (ROOT / script).read_text()] == []

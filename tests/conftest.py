"""Session-wide fixtures: the whole app is synthesized once per test session, with AWS made unreachable.

The xdist controller loads this file too and synthesizes nothing, so the app (and with it aws-cdk-lib,
whose import starts a node process) is imported by the fixtures that need it, not here.
"""

from __future__ import annotations

import copy
import functools
import gc
import inspect
import os
import socket
import types
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

# Tests never talk to AWS: no credentials, no instance metadata, a region for clients built by moto tests.
# Set before anything imports aws-cdk-lib, whose node process reads the end-of-life banner switch at start.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-west-1",
    AWS_EC2_METADATA_DISABLED="true",
    JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
)

import botocore.client  # noqa: E402
import botocore.hooks  # noqa: E402
import botocore.loaders  # noqa: E402
import botocore.model  # noqa: E402
import pytest  # noqa: E402

from tests.shared_builds import SharedBuilds  # noqa: E402

if TYPE_CHECKING:
    from tests.cfn_lint import Finding
    from tests.synth import Synthesized


def _share_parsed_service_models() -> None:
    """One parsed copy of botocore's data files (service models, endpoints) for every session in the process.

    moto gives each `mock_aws` block a fresh default session, and the Lambda handlers under test create their
    clients per call, so without this every new session parsed the same large JSON files again (the
    SageMaker model and endpoints.json alone take about 0.1 s). Botocore never changes what it loaded (one
    session already hands the same objects to all its clients), so loaders with the same search paths can
    share their cache.
    """
    shared: dict[tuple, dict] = {}
    create = botocore.loaders.Loader.__init__
    if getattr(create, "shares_parsed_files", False):
        return

    def create_sharing(self, *args, **kwargs) -> None:
        create(self, *args, **kwargs)
        key = (tuple(self.search_paths), tuple(self.extras_types), type(self.file_loader))
        self._cache = shared.setdefault(key, self._cache)

    create_sharing.shares_parsed_files = True
    botocore.loaders.Loader.__init__ = create_sharing


def _reuse_client_classes() -> None:
    """One client class per service model for every session in the process, where nothing session-specific
    shapes it.

    Building a client's class (a method per operation, about 400 for SageMaker) is most of the cost of
    `boto3.client()`, and moto's task states, the handlers under test and the tests build thousands of
    clients. A class depends only on the service model and on the handlers of `creating-client-class`,
    which may add methods; botocore's own handlers are plain functions, the same for every session. A class
    shaped by anything else (boto3's per-session handlers for S3, a test's own) is built anew, as before.
    """
    create = botocore.client.ClientCreator._create_client_class
    if getattr(create, "reuses_classes", False):
        return
    classes: dict[tuple, tuple[object, tuple, type]] = {}

    def create_or_reuse(self, service_name, service_model):
        event = f"creating-client-class.{service_model.service_id.hyphenize()}"
        registered = getattr(getattr(self._event_emitter, "_emitter", self._event_emitter), "_handlers", None)
        handlers = tuple(registered.prefix_search(event)) if registered is not None else None
        if handlers is None or not all(inspect.isfunction(h) and h.__closure__ is None and "<locals>" not in h.__qualname__ for h in handlers):
            return create(self, service_name, service_model)
        description = service_model._service_description
        key = (service_name, id(description), tuple(id(h) for h in handlers))
        found = classes.get(key)
        if found is None or found[0] is not description or found[1] != handlers:
            found = classes[key] = (description, handlers, create(self, service_name, service_model))
        return found[2]

    create_or_reuse.reuses_classes = True
    botocore.client.ClientCreator._create_client_class = create_or_reuse


def _share_event_alias_names() -> None:
    """One cache of aliased event names for every emitter with the same aliases.

    Each client gets its own copy of its session's event emitter, with an empty cache of the names it has
    translated through botocore's event aliases; a new client translated every event name it registered and
    emitted again, about a fifth of the cost of `boto3.client()`. The translation depends only on the name and
    the aliases, so emitters whose aliases are equal share what they have translated.
    """
    aliaser = botocore.hooks.EventAliaser
    create = aliaser.__init__
    if getattr(create, "shares_alias_names", False):
        return
    shared: dict[tuple, dict[str, str]] = {}

    def create_sharing(self, event_emitter, event_aliases=None) -> None:
        create(self, event_emitter, event_aliases)
        self._alias_name_cache = shared.setdefault(tuple(self._event_aliases.items()), self._alias_name_cache)

    create_sharing.shares_alias_names = True
    aliaser.__init__ = create_sharing


def _share_service_models() -> None:
    """One service model per parsed service description for every client in the process.

    Each client got a model of its own, whose caches (an operation model per operation, built the first time
    anything asks) start empty: a new SageMaker client built all 400 of its operation models again to find that
    the service has no endpoint discovery, about half of what `boto3.client()` still cost. A model only reads
    the description it wraps, which the loaders share (`_share_parsed_service_models`), and nothing in botocore,
    boto3 or moto changes a model once made, so clients of the same description can share one.
    """
    load = botocore.client.ClientCreator._load_service_model
    if getattr(load, "shares_models", False):
        return
    models: dict[tuple[int, str], botocore.model.ServiceModel] = {}

    def load_shared(self, service_name, api_version=None):
        loaded = load(self, service_name, api_version)
        key = (id(loaded._service_description), service_name)
        found = models.get(key)
        if found is None or found._service_description is not loaded._service_description:
            found = models[key] = loaded
        return found

    load_shared.shares_models = True
    botocore.client.ClientCreator._load_service_model = load_shared


def _inspect_each_handler_once() -> None:
    """Whether an event handler takes keyword arguments, worked out once per function.

    Every new botocore session registers its couple of hundred built-in handlers, and registering checks each
    handler's signature with `inspect.getfullargspec`: about half of what creating a session cost (moto makes one
    per `mock_aws` block, the CLI and the worlds one per account or run). The answer depends only on the function
    (a bound method's on its function), so it is kept beside it for as long as the function lives.
    """
    accepts = botocore.hooks.accepts_kwargs
    if getattr(accepts, "remembers", False):
        return
    known: weakref.WeakKeyDictionary[types.FunctionType, bool] = weakref.WeakKeyDictionary()

    def accepts_kwargs(func) -> bool:
        function = getattr(func, "__func__", func)
        if not isinstance(function, types.FunctionType):
            return accepts(func)
        if function not in known:
            known[function] = accepts(function)
        return known[function]

    accepts_kwargs.remembers = True
    botocore.hooks.accepts_kwargs = accepts_kwargs


def _share_endpoint_providers() -> None:
    """One endpoint provider per endpoint rule set for every client in the process.

    Each client parsed its service's endpoint rules into a tree of rule objects (a third of what building a
    client still cost) and started with an empty cache of the endpoints it resolved. A provider only reads the
    rule set and partition data it was given, which the loaders share (`_share_parsed_service_models`), and what
    it resolves depends only on the parameters of each call, so clients of the same rules can share one.
    """
    import botocore.regions

    create = botocore.regions.EndpointProvider
    if getattr(create, "shares_providers", False):
        return
    providers: dict[tuple, tuple[dict, dict, object]] = {}

    def endpoint_provider(ruleset_data, partition_data, excluded_params=None):
        key = (id(ruleset_data), id(partition_data), frozenset(excluded_params or ()))
        found = providers.get(key)
        if found is None or found[0] is not ruleset_data or found[1] is not partition_data:
            found = providers[key] = (ruleset_data, partition_data, create(ruleset_data, partition_data, excluded_params))
        return found[2]

    endpoint_provider.shares_providers = True
    botocore.regions.EndpointProvider = endpoint_provider


_share_parsed_service_models()
_reuse_client_classes()
_share_event_alias_names()
_share_service_models()
_inspect_each_handler_once()
_share_endpoint_providers()

# A test process keeps about half a million objects for its whole run (the modules and models of
# aws-cdk-lib, moto and botocore) and makes many short-lived ones in every test. With the default thresholds
# (700, 10, 10) each worker went through all of them in 20 to 50 full collections, a sixth of the suite's
# time; with these, young garbage is still collected as it comes and full collections are rare. Peak memory
# stayed the same (about 600 MB per worker).
gc.set_threshold(2000, 20, 100)


def pytest_unconfigure(config: pytest.Config) -> None:
    # What the session made (about 600,000 objects in a worker: botocore models, moto's backends, jsii's
    # proxies) dies with the process. The interpreter's last collections over all of it took about 2 s per
    # worker, which the run waited for; frozen objects are left out of them.
    gc.freeze()


# The repository's config/ is the user's: their accounts, regions, users and e-mails. Only the tests under
# tests/user_config read it; every other test synthesizes from the tests' own tests/config, so that editing
# config/ can never turn them red.
USER_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
USER_CONFIG_TESTS = Path(__file__).resolve().parent / "user_config"
_running_a_user_config_test = False


class UserConfigRefused(AssertionError):
    """Raised when a test outside tests/user_config loads the repository's config/."""


def _refuse_user_config_outside_its_tests() -> None:
    """Every load of config/<env>.yaml from the repository's config/ raises unless a test of
    tests/user_config runs. The loader is replaced where it is defined and where it is exported, before
    any test module imports it; `load_environments` calls it by its module's name, so it is covered too."""
    import config
    import config.settings

    load = config.settings.load_environment
    if getattr(load, "refuses_user_config", False):
        return

    def load_environment(config_dir: Path, name: str):
        if Path(config_dir).resolve() == USER_CONFIG_DIR and not _running_a_user_config_test:
            raise UserConfigRefused(
                f"this test loaded {USER_CONFIG_DIR}/{name}.yaml, the user's own configuration: editing it would "
                "turn this test red. Tests synthesize from the tests' configuration, tests/config "
                "(tests.synth.TEST_CONFIG_DIR, tests.synth.environment_config); only tests under "
                "tests/user_config check config/ itself."
            )
        return load(config_dir, name)

    load_environment.refuses_user_config = True
    config.settings.load_environment = config.load_environment = load_environment


def _parse_each_config_text_once() -> None:
    """The configuration loader parses each distinct text of a config file once per process.

    The suite loads the same few environment files thousands of times (every synth, every CLI invocation), and
    PyYAML's pure-Python parser was most of a load. What `_read_yaml` returns depends only on the text; each
    caller gets its own copy, since the loader changes the document it reads.
    """
    import config.settings

    read = config.settings._read_yaml
    if getattr(read, "remembers", False):
        return
    parsed: dict[str, tuple] = {}

    def read_yaml(text: str) -> tuple:
        if text not in parsed:
            parsed[text] = read(text)
        return copy.deepcopy(parsed[text])

    read_yaml.remembers = True
    config.settings._read_yaml = read_yaml


def _remember_moto_method_names() -> None:
    """moto's answer to which methods a response class has, worked out once per state of the class.

    moto finds the method for every request it answers with `inspect.getmembers` over the service's response
    class (hundreds of attributes for SageMaker), a few percent of every behaviour test. The answer depends only
    on the names in the class's and its bases' dictionaries and on which of their values are functions, so it is
    kept with them and worked out again when any of them changed (a test patching a response method changes
    them; moto's count of requests, a plain number in a base class, changes with every request).
    """
    import moto.core.responses

    find = moto.core.responses.method_names_from_class
    if getattr(find, "remembers", False):
        return
    remembered: dict[type, tuple[tuple, list[str]]] = {}

    def method_names(clazz: type) -> list[str]:
        state = tuple((tuple(vars(base)), tuple(v for v in vars(base).values() if isinstance(v, types.FunctionType))) for base in clazz.__mro__)
        found = remembered.get(clazz)
        if found is None or found[0] != state:
            found = remembered[clazz] = (state, find(clazz))
        return list(found[1])

    method_names.remembers = True
    moto.core.responses.method_names_from_class = method_names


def _parse_each_request_body_once() -> None:
    """moto's handlers parse a request's JSON body once, not once for every parameter they read.

    `BaseResponse._get_param` parsed the whole body again for each parameter it looked up: CreateStateMachine
    reads ten, and parsing the deployer's 200 KB definition ten times was two thirds of creating it (a
    deployer world creates one). This is moto's lookup, in moto's order, with the body parsed once per text it
    holds; a dict or list it returns is a copy of its own, as a parse of its own gave it, so a handler that
    changes what it read changes nothing a later lookup finds.
    """
    import json

    from moto.core.responses import BaseResponse, ChainMap, get_value

    from tests.json_values import copy_of

    if getattr(BaseResponse._get_param, "parses_once", False):
        return
    unparsable = object()

    def parsed_body(response: BaseResponse):
        kept = response.__dict__.get("_parsed_body")
        if kept is None or kept[0] is not response.body:
            try:
                parsed = json.loads(response.body)
            except (ValueError, TypeError):
                parsed = unparsable
            kept = response._parsed_body = (response.body, parsed)
        if kept[1] is unparsable:
            raise ValueError("the body is not JSON")
        return kept[1]

    def get_param(self: BaseResponse, param_name: str, if_none=None):
        if self.automated_parameter_parsing:
            return get_value(ChainMap(self.params, self.uri_match), param_name, default=if_none)
        val = self.querystring.get(param_name)
        if val is not None:
            return val[0]
        if self.body is not None:
            try:
                return copy_of(parsed_body(self)[param_name])
            except (ValueError, KeyError, TypeError):
                pass
        if self.uri_match:
            try:
                return self.uri_match[param_name]
            except KeyError:
                pass
        return if_none

    get_param.parses_once = True
    BaseResponse._get_param = get_param


def _build_moto_request_callbacks_once() -> None:
    """moto's callbacks for requests made with `requests` are built once per process, not at every `mock_aws`.

    Each `mock_aws` block registered a new `CallbackResponse` for every HTTP method and every service's URL
    pattern, some 1,300 objects, two thirds of what entering a block cost (the suite enters about a thousand).
    They depend only on the patterns, which are fixed at import; this is moto's registration, in moto's order,
    of the objects built the first time. (Their counts of the requests they matched are kept across blocks;
    nothing reads them.)
    """
    import re

    import moto.backend_index as backend_index
    from moto.core import models

    if getattr(models.MockAWS._enable_patching, "builds_once", False):
        return
    built: list = []

    def callbacks() -> list:
        if not built:
            for method in models.RESPONSES_METHODS:
                built.extend(
                    models.CallbackResponse(method=method, url=pattern, callback=models.botocore_stubber.process_prepared_request)
                    for _, pattern in backend_index.backend_url_patterns
                )
                built.append(models.CallbackResponse(method=method, url=re.compile(r"https?://.+\.amazonaws.com/.*"), callback=models.not_implemented_callback))
        return built

    def enable_patching(self: models.MockAWS, reset: bool = True) -> None:
        models.botocore_stubber.enabled = True
        if reset:
            self.reset()
        models.responses_mock.start()
        for callback in callbacks():
            models.responses_mock.add(callback)

    enable_patching.builds_once = True
    models.MockAWS._enable_patching = enable_patching


def _pick_members_of_plain_dicts_directly() -> None:
    """moto's response serializer finds a member of a plain dict by the names it works out once per member.

    moto writes every response by walking the operation's output shape and, for each member of each structure,
    asking its attribute picker for the value under any of the names the member may have (its own, its shape's,
    its serialized name, prefixes stripped, and each of those in snake_case). The picker worked those names out
    again for every member of every value: a Step Functions history event has some sixty members and a history a
    few hundred events, so a GetExecutionHistory took tens of milliseconds, and writing responses was about a
    sixteenth of the suite. For a plain dict the names depend only on the member's name, its shape and the
    shape's parent (the alias rules read the object only for its `Meta` aliases and its class name, the same
    for every dict), so they are kept per member; and the value is the dict's under the first of those names it
    holds, as moto's `get_value` finds it for a name without a dot. Objects of moto's model classes, names
    with a dot, and pickers with aliases or transformations of their own go through moto's code unchanged.
    """
    from moto.core import serialize

    if getattr(serialize.AttributePicker.__call__, "picks_dict_members_directly", False):
        return
    find_names = serialize.XFormedAttributePicker.get_possible_keys
    pick = serialize.AttributePicker.__call__
    names_of: dict[tuple, tuple[str, ...]] = {}

    def member_names(picker: serialize.XFormedAttributePicker, context: serialize.AttributePickerContext):
        if type(context.obj) is not dict or picker.alias_providers is not serialize.DEFAULT_ALIAS_PROVIDERS:
            return find_names(picker, context)
        member = (context.key, context.shape, getattr(context.shape, "parent", None))
        names = names_of.get(member)
        if names is None:
            names = names_of[member] = tuple(find_names(picker, context))
        return names

    def picked(picker: serialize.AttributePicker, context: serialize.AttributePickerContext):
        value = context.obj
        if type(value) is not dict or picker.response_transformers or picker.alias_providers is not serialize.DEFAULT_ALIAS_PROVIDERS:
            return pick(picker, context)
        names = tuple(picker.get_possible_keys(context))
        if any("." in name for name in names):
            return pick(picker, context)
        return next((value[name] for name in names if name in value), None)

    picked.picks_dict_members_directly = True
    member_names.__wrapped__ = find_names
    picked.__wrapped__ = pick
    serialize.XFormedAttributePicker.get_possible_keys = member_names
    serialize.AttributePicker.__call__ = picked


def _parse_each_json_path_once() -> None:
    """jsonpath-ng's extended parser remembers the expressions it parsed.

    moto's EventBridge parses its input paths again for every event it delivers to a target (it imports
    `jsonpath_ng.ext.parse` at each call), and jsonpath-ng builds its whole yacc parser for every parse: about a
    millisecond per event put. A parsed expression is never changed by finding it in a document.
    """
    import jsonpath_ng.ext

    if hasattr(jsonpath_ng.ext.parse, "cache_info"):
        return
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=None)(jsonpath_ng.ext.parse)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    # Before any test module is imported. The xdist controller runs no test and skips the import of
    # config (which imports aws-cdk-lib, a second of start-up) and of moto.
    if not session.config.pluginmanager.has_plugin("dsession"):
        _refuse_user_config_outside_its_tests()
        _parse_each_config_text_once()
        _remember_moto_method_names()
        _parse_each_request_body_once()
        _build_moto_request_callbacks_once()
        _pick_members_of_plain_dicts_directly()
        _parse_each_json_path_once()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    # Around setup too: a session fixture is built in the setup of the first test that asks for it.
    global _running_a_user_config_test
    _running_a_user_config_test = item.path.is_relative_to(USER_CONFIG_TESTS)
    try:
        yield
    finally:
        _running_a_user_config_test = False


class AwsCallAttempted(AssertionError):
    """Raised when code under test calls AWS or opens a non-loopback connection during synth."""


@contextmanager
def aws_unreachable(attempts: list[str]) -> Iterator[None]:
    """Make every botocore API call and every non-loopback connection raise, recording the attempt."""

    def refuse_api_call(client, operation_name, api_params):
        attempts.append(f"{client.meta.service_model.service_name}.{operation_name}")
        raise AwsCallAttempted(f"synth called AWS: {attempts[-1]}")

    real_connect = socket.socket.connect

    def refuse_remote_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
            attempts.append(f"connect {address}")
            raise AwsCallAttempted(f"synth opened a network connection to {address}")
        return real_connect(sock, address)

    with (
        mock.patch.object(botocore.client.BaseClient, "_make_api_call", refuse_api_call),
        mock.patch.object(socket.socket, "connect", refuse_remote_connect),
    ):
        yield


# Session fixture name -> the shared folder it reads and how that folder is built, in the order a process
# builds them when it starts (most wanted first). Conftests further down register their own.
SHARED_BUILDS: dict[str, tuple[str, Callable[[Path], object]]] = {}
_EXPECTED_BUILDS = pytest.StashKey[list[tuple[str, Callable[[Path], object]]]]()


def shared_build(fixture: str, name: str, build: Callable[[Path], object]) -> tuple[str, Callable[[Path], object]]:
    """Register the folder `name` that the session fixture `fixture` reads; returns (name, build)."""
    SHARED_BUILDS[fixture] = (name, build)
    return SHARED_BUILDS[fixture]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # What the selected tests will read; fixtures looked up at run time by name are built when asked for.
    wanted = {fixture for item in items for fixture in getattr(item, "fixturenames", ())}
    config.stash[_EXPECTED_BUILDS] = [build for fixture, build in SHARED_BUILDS.items() if fixture in wanted]


@pytest.fixture(scope="session")
def shared_builds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SharedBuilds:
    """Folders built once per test session, whichever xdist worker asks first (see tests/shared_builds.py)."""
    workerinput = getattr(request.config, "workerinput", None)
    if workerinput is None:
        builds = SharedBuilds(tmp_path_factory.getbasetemp() / "shared")
    else:
        # A worker's temporary folder (popen-gw0, ...) is a folder of the session's.
        builds = SharedBuilds(tmp_path_factory.getbasetemp().parent / f"shared-{workerinput['testrunuid']}")
    builds.expect(request.config.stash.get(_EXPECTED_BUILDS, []))
    return builds


def _build_app(folder: Path) -> None:
    """Every environment, synthesized exactly as `cdk synth` would (cdk-nag included), with AWS unreachable."""
    from tests.synth import synthesize

    synthesize(folder / "cdk.out", reuse=True)


def _build_optional_pieces_on(folder: Path) -> None:
    from tests.optional_pieces import switch_on
    from tests.synth import synthesize_dev_with

    synthesize_dev_with(folder, switch_on, reuse=True)


_APP = shared_build("synthesized", "app", _build_app)
_OPTIONAL_PIECES_ON = shared_build("optional_pieces_on", "optional-pieces-on", _build_optional_pieces_on)


def synthesized_app(shared_builds: SharedBuilds) -> Path:
    """The folder holding every environment of tests/config synthesized exactly as `cdk synth` would (cdk-nag
    included), with AWS unreachable (cdk.out); built once per session."""
    return shared_builds.folder(*_APP)


def lint_findings_of_app(shared_builds: SharedBuilds) -> list[Finding]:
    """cfn-lint's findings on every template of `synthesized_app`, each environment's in its region."""
    from config import ENVIRONMENTS
    from tests.cfn_lint import shared_lint, templates_by_region
    from tests.synth import Synthesized

    synthesized = Synthesized(synthesized_app(shared_builds) / "cdk.out")
    regions = {environment: synthesized.config(environment).region for environment in ENVIRONMENTS}
    return shared_lint(shared_builds, "app", templates_by_region(synthesized.outdir, regions))


@pytest.fixture(scope="session")
def synthesized(shared_builds: SharedBuilds) -> Synthesized:
    """Every environment of tests/config, synthesized once per test session exactly as `cdk synth` would
    (cdk-nag included), with AWS unreachable."""
    from tests.synth import Synthesized

    return Synthesized(synthesized_app(shared_builds) / "cdk.out")


@pytest.fixture(scope="session")
def optional_pieces_on(shared_builds: SharedBuilds) -> Synthesized:
    """dev synthesized as `cdk synth` would (cdk-nag included) with every optional piece switched on
    (see tests/optional_pieces.py)."""
    from tests.synth import Synthesized

    return Synthesized(shared_builds.folder(*_OPTIONAL_PIECES_ON) / "cdk.out")


@pytest.fixture(scope="session")
def synth_aws_calls(synthesized: Synthesized) -> list[str]:
    """The AWS calls and remote connections attempted while the session's app was synthesized."""
    return synthesized.aws_calls


def one_core_per_worker(config: pytest.Config) -> set[int] | None:
    """Each xdist worker keeps to a core of its own when there are as many workers as cores: the core it now
    runs on, or None where it is left to the scheduler.

    moto runs each Step Functions execution in threads of its own, which hand the interpreter back and forth with
    the test's thread at every state. Handed between threads on different cores, that cost about a tenth more
    CPU than on one (`make test` on 2 cores: 60-62 s of CPU pinned, 65-68 s not; the deployer fault tests alone,
    16.2 s pinned against 16.7-19.2 s not). A worker's sub-processes (node, the pipeline scripts) keep to its
    core too: the worker waits for them."""
    worker = getattr(config, "workerinput", None)
    if worker is None or not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if int(worker["workercount"]) != len(cores):
        return None
    core = {cores[int(worker["workerid"].removeprefix("gw")) % len(cores)]}
    os.sched_setaffinity(0, core)
    return core


def pytest_configure(config: pytest.Config) -> None:
    one_core_per_worker(config)

"""The conformance kit: pytest tests that compare an SSPI backend with the model.

A backend's project subclasses `BackendConformance` and returns its backend from `make_backend`:

    from sspi_model.testing.suite import BackendConformance
    from mypkg.backend import MyBackend

    class TestMyBackend(BackendConformance):
        def make_backend(self) -> MyBackend:
            return MyBackend()

Without the override, `make_backend` calls the plugin's `sspi_backend_factory` fixture
(--sspi-backend; the model by default). No expectation is written down here: every step runs on
the backend and on the model (ModelBackend in `profile`, or --sspi-profile) and the outcomes must
match. What the backend's `capabilities` lack (a package, a call, the async API) is skipped with
the reason; a crash, a hang, an exception or a wrong result type (guard.py) fails the test with its
outcome and resets the backend. A difference that is one of the backend's known divergences
(`known_divergences`: the list shipped for its capabilities.name, its own `known_divergences`
attribute, --sspi-known) is an xfail naming the entry (CLI-004). `test_differential` adds a
bounded Hypothesis campaign (`check_backend`): new divergences fail the test, known ones are
printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any, NoReturn

import attrs
import pytest

from sspi_model.async_api import AsyncContext
from sspi_model.async_calls import AsyncCalls
from sspi_model.backends.base import Backend, BackendFailure
from sspi_model.backends.model import ModelBackend
from sspi_model.constants import CredentialUse, SecPkgAttr
from sspi_model.handles import HandleClass, HandleKind, SecHandle
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.status import lookup
from sspi_model.testing.check import CheckReport, check_backend
from sspi_model.testing.differential import ACCOUNTS, DOMAIN, PASSWORD, USER
from sspi_model.testing.divergence import Divergence, KnownDivergence, classify, known_for
from sspi_model.testing.guard import call_timeout, guarded

ALICE = AuthIdentity(USER, PASSWORD, DOMAIN)
OUTBOUND, INBOUND = CredentialUse.OUTBOUND, CredentialUse.INBOUND
SIZES = SecPkgAttr.SECPKG_ATTR_SIZES
TARGET = "host/srv"
CONNECTION = 0x800  # ISC_REQ_CONNECTION / ASC_REQ_CONNECTION
GARBAGE = bytes(range(7, 71))
NULL_HANDLES = {"NULL": None, "zeroed": SecHandle(0, 0)}


@attrs.frozen(repr=False)
class Both:
    """One value on both sides: the model's and the backend's (a result, a handle, a token)."""

    name: str
    model: Any
    backend: Any
    step: int = 0

    def __repr__(self) -> str:
        return self.name

    def side(self, side: str) -> Any:
        return self.model if side == "model" else self.backend

    def _pick(self, attribute: str, name: str) -> Both:
        return Both(name, getattr(self.model, attribute), getattr(self.backend, attribute))

    @property
    def credential(self) -> Both:
        return self._pick("credential", self.name)

    @property
    def new_context(self) -> Both:
        return self._pick("new_context", self.name)

    @property
    def output_token(self) -> Both:
        return self._pick("output_token", f"token({self.step})")


Arg = Both | SecHandle | bytes | None


class Lockstep:
    """Runs each call on the model and on the backend, and fails at the first difference.

    Values returned by one side go back to that side only, so handles may differ. An outcome is
    the status name, plus whether a handle was created (calls that create one) and whether a
    token came out (ISC/ASC).
    """

    def __init__(
        self,
        model: ModelBackend,
        backend: Backend,
        async_api_of: Callable[[Backend], AsyncCalls] | None = None,
        known: tuple[KnownDivergence, ...] = (),
    ) -> None:
        self.model = model
        self.backend = backend
        self.async_api_of = async_api_of
        self.known = known  # CLI-004: a matching difference is an xfail, not a failure
        self.steps: list[str] = []
        self._counts: dict[str, int] = {}
        self._roles: dict[Any, str] = {}  # the model's context handles: client or server

    # -- capabilities ------------------------------------------------------------------------

    @property
    def backend_name(self) -> str:
        return self.backend.capabilities.name

    def require_package(self, package: str) -> None:
        declared = {name.casefold() for name in self.backend.capabilities.packages}
        if package.casefold() not in declared:
            pytest.skip(f"{self.backend_name}: capabilities.packages lacks {package}")

    def require_async(self) -> None:
        if not self.backend.capabilities.async_api:
            pytest.skip(f"{self.backend_name}: capabilities.async_api is False")

    # -- the synchronous calls ---------------------------------------------------------------

    def acquire_credentials_handle(self, package: str, use: int, auth: Any = None) -> Both:
        return self.call("acquire_credentials_handle", package, use, auth, creates="cred")

    def free_credentials_handle(self, credential: Arg) -> Both:
        return self.call("free_credentials_handle", credential)

    def initialize_security_context(
        self, credential: Arg, context: Arg = None, input: Arg = None
    ) -> Both:
        creates = "ctx" if context is None else ""
        args = (credential, context, TARGET, CONNECTION, input)
        return self.call("initialize_security_context", *args, creates=creates)

    def accept_security_context(
        self, credential: Arg, context: Arg = None, input: Arg = None
    ) -> Both:
        creates = "ctx" if context is None else ""
        args = (credential, context, input, CONNECTION)
        return self.call("accept_security_context", *args, creates=creates)

    def delete_security_context(self, context: Arg) -> Both:
        return self.call("delete_security_context", context)

    def query_context_attributes(self, context: Arg, attribute: int = SIZES) -> Both:
        return self.call("query_context_attributes", context, attribute)

    def query_security_package_info(self, package: str) -> Both:
        return self.call("query_security_package_info", package)

    def call(self, method: str, *args: Any, creates: str = "") -> Both:
        """`method` on both sides; `creates` ("cred", "ctx") names the handle it may return."""
        if method not in self.backend.capabilities.calls:
            pytest.skip(f"{self.backend_name}: capabilities.calls lacks {method}")
        return self._step(method, args, self.model, self.backend, creates)

    # -- the asynchronous calls (kernel-mode Sspi*Async, for backends that declare them) ------

    def async_call(self, method: str, *args: Any, **kwargs: Any) -> Both:
        """An AsyncCalls method on both sides, e.g. ("delete_security_context_async", ac, ...)."""
        self.require_async()
        assert self.async_api_of is not None, "Lockstep built without async_api_of"
        apis = (self.async_api_of(self.model), self.async_api_of(self.backend))
        creates = "async" if method == "create_async_context" else ""
        return self._step(method, args, *apis, creates, kwargs)

    def run_async_calls(self) -> None:
        """Let both sides' schedulers complete what is queued (those with `run_all`, such as
        the model's default ManualScheduler; an inline scheduler has nothing left to run)."""
        self.require_async()
        assert self.async_api_of is not None, "Lockstep built without async_api_of"
        for backend in (self.model, self.backend):
            run_all = getattr(self.async_api_of(backend).scheduler, "run_all", None)
            if callable(run_all):
                run_all()
        self.steps.append("<the schedulers complete the queued calls>")

    # -- comparing ---------------------------------------------------------------------------

    def _step(
        self,
        method: str,
        args: tuple[Any, ...],
        model: Any,
        backend: Any,
        creates: str = "",
        kwargs: dict[str, Any] | None = None,
    ) -> Both:
        kwargs = kwargs or {}
        shown = _call_text(method, args, kwargs)
        self.model.sspi.last_rules = ()  # a call that records no rule must not show stale ones
        situation = self._situation(method, args)  # before the call, as check names it
        expected_result = getattr(model, method)(*_side(args, "model"), **_side(kwargs, "model"))
        expected = _outcome(expected_result, creates)
        rules = self.model.last_rules
        failure: BackendFailure | None = None
        try:
            observed_result = guarded(
                method,
                lambda: getattr(backend, method)(
                    *_side(args, "backend"), **_side(kwargs, "backend")
                ),
                model_result=expected_result,
                timeout=call_timeout(self.backend),
            )
        except BackendFailure as error:
            failure = error
        if failure is not None:  # outside the except block: no chained traceback in the report
            self.backend.reset()
            self._known(method, situation, expected, failure.outcome)
            self._fail(shown, expected, rules, failure.outcome, "; the backend was reset")
        observed = _outcome(observed_result, creates)
        if expected != observed:
            self._known(method, situation, expected, observed)
            self._fail(shown, expected, rules, observed)
        if method in ("initialize_security_context", "accept_security_context"):
            handle = getattr(expected_result, "new_context", None)
            if handle is not None:
                self._roles.setdefault(handle, "client" if method[0] == "i" else "server")
        name = f"step{len(self.steps) + 1}"
        if creates and _made_handle(expected_result):
            self._counts[creates] = self._counts.get(creates, 0) + 1
            name = f"{creates}{self._counts[creates]}"
            shown = f"{name} = {shown}"
        self.steps.append(f"{shown} -> {expected}")
        return Both(name, expected_result, observed_result, step=len(self.steps))

    def _situation(self, method: str, args: tuple[Any, ...]) -> str:
        """The situation as the differential machine names it, for matching known lists."""
        sspi = self.model.sspi
        if method in _TARGET_CALLS and not isinstance(args[0], Both):
            return f"handle={_literal_name(args[0])}"
        names: tuple[str, ...] = ("credential", "context") if method in _LEG_CALLS else ()
        if method in _TARGET_CALLS:
            names = ("credential",) if method == "free_credentials_handle" else ("context",)
        parts = []
        for name, value in zip(names, args, strict=False):
            if not isinstance(value, Both):
                continue
            kind = HandleKind.CREDENTIAL if name == "credential" else HandleKind.CONTEXT
            handle_class = sspi.classify(value.model, kind)
            text = str(handle_class.value)
            if handle_class is HandleClass.LIVE and kind is HandleKind.CONTEXT:
                record = sspi._core.live_context(value.model)
                state = record.state.value if record is not None else "live"
                text = f"{self._roles.get(value.model, 'client')}-{state}"
            parts.append(f"{name}={text}")
        if method in _LEG_CALLS:
            client = method == _LEG_CALLS[0]
            parts.append(f"input={_input_kind(args[4 if client else 2], client)}")
        return ",".join(parts)

    def _known(self, method: str, situation: str, expected: str, observed: str) -> None:
        """xfail the test when the difference is a known divergence of the backend (CLI-004)."""
        if not self.known:
            return
        call = C_NAMES.get(method, method)
        want, got = expected.split(", "), observed.split(", ")
        aspect, want_text, got_text = "status", want[0], got[0]
        if want[0] == got[0]:
            # The same status: the first part that differs (a handle, then a token) where one
            # side made none, as check compares it.
            for wanted, gotten in zip(want[1:], got[1:], strict=False):
                if wanted != gotten:
                    aspect = "handle" if "handle" in wanted else "token"
                    want_text, got_text = str(wanted.startswith("a ")), str(gotten.startswith("a "))
                    break
        found = Divergence(call, "", situation, aspect, want_text, got_text)
        candidate = classify(found, self.known)
        if candidate.known is not None:
            pytest.xfail(f"known divergence {candidate.known}: {candidate.explanation}")

    def _fail(
        self, call: str, expected: str, rules: tuple[str, ...], observed: str, note: str = ""
    ) -> NoReturn:
        profile = self.model.sspi.profile.name
        why = f"rules {', '.join(rules)}" if rules else "no rule recorded"
        lines = [
            f"{self.backend_name} differs from the model at {call}",
            f"  expected: {expected}  (model, profile {profile!r}; {why})",
            f"  observed: {observed}  ({self.backend_name}{note})",
        ]
        if self.steps:
            lines.append("  after these steps (same outcome on both):")
            lines += [f"    {number}. {step}" for number, step in enumerate(self.steps, 1)]
        pytest.fail("\n".join(lines), pytrace=False)


# The C names check and the known lists use (CLI-004).
C_NAMES = {
    "enumerate_security_packages": "EnumerateSecurityPackagesW",
    "query_security_package_info": "QuerySecurityPackageInfoW",
    "acquire_credentials_handle": "AcquireCredentialsHandleW",
    "free_credentials_handle": "FreeCredentialsHandle",
    "initialize_security_context": "InitializeSecurityContextW",
    "accept_security_context": "AcceptSecurityContext",
    "complete_auth_token": "CompleteAuthToken",
    "delete_security_context": "DeleteSecurityContext",
    "query_context_attributes": "QueryContextAttributesW",
    "free_context_buffer": "FreeContextBuffer",
}
_TARGET_CALLS = ("delete_security_context", "free_credentials_handle", "query_context_attributes")
_LEG_CALLS = ("initialize_security_context", "accept_security_context")


def _input_kind(value: Any, client: bool) -> str:
    if isinstance(value, Both):
        return "server-token" if client else "client-token"
    if value is None:
        return "none"
    return "empty" if value == b"" else "garbage"


def _literal_name(handle: Any) -> str:
    if handle is None:
        return "NULL"
    if handle == SecHandle(0, 0):
        return "zeroed"
    return "invalidated" if handle == SecHandle.invalid() else "unmapped"


def _side(values: Any, side: str) -> Any:
    if isinstance(values, dict):
        return {key: _side_value(value, side) for key, value in values.items()}
    return tuple(_side_value(value, side) for value in values)


def _side_value(value: Any, side: str) -> Any:
    return value.side(side) if isinstance(value, Both) else value


def _call_text(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [_show(value) for value in args]
    shown += [f"{key}={_show(value)}" for key, value in kwargs.items()]
    return f"{method}({', '.join(shown)})"


def _show(value: Any) -> str:
    if value is ALICE:
        return "alice"  # AuthIdentity of CONTOSO\alice with her password
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, bytes) and len(value) > 16:
        return f"<{len(value)} bytes>"
    if isinstance(value, int) and not isinstance(value, bool) and value > 9:
        return hex(value)
    return repr(value)


def _outcome(result: Any, creates: str) -> str:
    """What is compared of a result: its status, a created handle, an output token."""
    if result is None or isinstance(result, AsyncContext):
        return "an async context" if result is not None else "None"
    status = result if isinstance(result, int) else result.status
    parts = [lookup(int(status)).name]
    if creates:
        parts.append("a new handle" if _made_handle(result) else "no handle")
    if hasattr(result, "output_token"):
        parts.append("a token" if result.output_token else "no token")
    return ", ".join(parts)


def _made_handle(result: Any) -> bool:
    if isinstance(result, AsyncContext):
        return True
    handle = getattr(result, "credential", None) or getattr(result, "new_context", None)
    return handle is not None


class BackendConformance:
    """Subclass with a `make_backend` returning your backend; every test compares it with the
    model. Class attributes: `profile` (None: --sspi-profile, else "documented"), and for
    `test_differential` the examples per round, the seed and the most rounds (each round ends at
    a new divergence, shrunk)."""

    profile: str | None = None
    differential_examples: int = 50
    differential_seed: int = 0
    differential_max_rounds: int = 10

    _request: pytest.FixtureRequest

    @pytest.fixture(autouse=True)
    def _sspi_conformance_request(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def make_backend(self) -> Backend:
        """A fresh backend; the default is the plugin's `sspi_backend_factory` fixture."""
        try:
            factory = self._request.getfixturevalue("sspi_backend_factory")
        except pytest.FixtureLookupError:
            pytest.fail(
                "no backend: override make_backend() or load the plugin "
                "(pip install sspi-model, or -p sspi_model.testing.plugin)",
                pytrace=False,
            )
        backend: Backend = factory()
        return backend

    def model_profile(self) -> str:
        if self.profile is not None:
            return self.profile
        try:
            profile: str = self._request.getfixturevalue("sspi_profile")
        except pytest.FixtureLookupError:
            return "documented"
        return profile

    def async_api_of(self, backend: Backend) -> AsyncCalls:
        """The AsyncCalls of a backend declaring `async_api`: itself or its `sspi` (the model's
        layout). Override for another layout."""
        api = backend if isinstance(backend, AsyncCalls) else getattr(backend, "sspi", None)
        if not isinstance(api, AsyncCalls):
            pytest.fail(
                f"{backend!r} declares async_api but exposes no async API; override async_api_of()",
                pytrace=False,
            )
        return api

    def known_files(self) -> list[str]:
        """The --sspi-known files (CLI-004); override to add your own."""
        try:
            files: list[str] = self._request.getfixturevalue("sspi_known_files")
        except pytest.FixtureLookupError:
            return []
        return files

    def known_divergences(self, backend: Backend) -> tuple[KnownDivergence, ...]:
        """What the focused tests xfail: the list shipped for the backend's name, its own
        `known_divergences` and --sspi-known (CLI-004)."""
        return known_for(backend, backend.capabilities.name, self.known_files())

    @pytest.fixture
    def lockstep(self) -> Iterator[Lockstep]:
        backend = self.make_backend()
        backend.reset()
        model = ModelBackend(accounts=ACCOUNTS, profile=self.model_profile())
        try:
            yield Lockstep(model, backend, self.async_api_of, self.known_divergences(backend))
        finally:
            backend.close()

    @pytest.fixture
    def ntlm(self, lockstep: Lockstep) -> Lockstep:
        lockstep.require_package("NTLM")
        return lockstep

    # -- scenarios ---------------------------------------------------------------------------

    @pytest.mark.rule("ISC-001", "ASC-001", "ISC-002", "ASC-002", "QCA-001")
    def test_ntlm_handshake(self, ntlm: Lockstep) -> None:
        client_cred = ntlm.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
        server_cred = ntlm.acquire_credentials_handle("NTLM", INBOUND, ALICE).credential
        negotiate = ntlm.initialize_security_context(client_cred)
        challenge = ntlm.accept_security_context(server_cred, None, negotiate.output_token)
        client, server = negotiate.new_context, challenge.new_context
        authenticate = ntlm.initialize_security_context(client_cred, client, challenge.output_token)
        ntlm.accept_security_context(server_cred, server, authenticate.output_token)
        ntlm.query_context_attributes(client, SIZES)
        ntlm.query_context_attributes(server, SIZES)

    @pytest.mark.rule("HDL-005", "HDL-006", "DEL-002", "FCH-002")
    @pytest.mark.parametrize("handle", list(NULL_HANDLES), ids=list(NULL_HANDLES))
    @pytest.mark.parametrize(
        "method", ["delete_security_context", "free_credentials_handle", "query_context_attributes"]
    )
    def test_null_handle(self, lockstep: Lockstep, method: str, handle: str) -> None:
        extra = (SIZES,) if method == "query_context_attributes" else ()
        lockstep.call(method, NULL_HANDLES[handle], *extra)

    @pytest.mark.rule("FCB-002")
    def test_free_null_context_buffer(self, lockstep: Lockstep) -> None:
        lockstep.call("free_context_buffer", None)

    @pytest.mark.rule("FCH-001", "FCH-002", "HDL-003")
    def test_free_credentials_twice(self, ntlm: Lockstep) -> None:
        cred = ntlm.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
        ntlm.free_credentials_handle(cred)
        ntlm.free_credentials_handle(cred)

    @pytest.mark.rule("DEL-001", "DEL-003", "DEL-004")
    def test_delete_twice(self, ntlm: Lockstep) -> None:
        cred = ntlm.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
        context = ntlm.initialize_security_context(cred).new_context
        ntlm.delete_security_context(context)
        ntlm.delete_security_context(context)

    @pytest.mark.rule("HDL-003")
    def test_query_after_delete(self, ntlm: Lockstep) -> None:
        cred = ntlm.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
        context = ntlm.initialize_security_context(cred).new_context
        ntlm.delete_security_context(context)
        ntlm.query_context_attributes(context, SIZES)

    @pytest.mark.rule("HDL-008")
    def test_handles_of_the_wrong_kind(self, ntlm: Lockstep) -> None:
        cred = ntlm.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
        context = ntlm.initialize_security_context(cred).new_context
        ntlm.delete_security_context(cred)
        ntlm.free_credentials_handle(context)

    @pytest.mark.rule("ACH-002", "PKG-002")
    def test_unknown_package(self, lockstep: Lockstep) -> None:
        lockstep.acquire_credentials_handle("NoSuchPackage", OUTBOUND, ALICE)
        lockstep.query_security_package_info("NoSuchPackage")

    @pytest.mark.rule("LIF-001", "ASC-004")
    def test_failed_first_leg_returns_no_handle(self, ntlm: Lockstep) -> None:
        cred = ntlm.acquire_credentials_handle("NTLM", INBOUND, ALICE).credential
        ntlm.accept_security_context(cred, None, GARBAGE)

    @pytest.mark.rule("FCH-003")
    def test_free_credentials_while_its_context_lives(self, ntlm: Lockstep) -> None:
        client_cred = ntlm.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
        server_cred = ntlm.acquire_credentials_handle("NTLM", INBOUND, ALICE).credential
        negotiate = ntlm.initialize_security_context(client_cred)
        challenge = ntlm.accept_security_context(server_cred, None, negotiate.output_token)
        ntlm.free_credentials_handle(client_cred)
        client = negotiate.new_context
        authenticate = ntlm.initialize_security_context(None, client, challenge.output_token)
        ntlm.accept_security_context(None, challenge.new_context, authenticate.output_token)
        ntlm.query_context_attributes(client, SIZES)
        ntlm.delete_security_context(client)

    @pytest.mark.rule("DEL-001", "DEL-003")
    def test_async_delete_then_delete(self, ntlm: Lockstep) -> None:
        ntlm.require_async()
        cred = ntlm.acquire_credentials_handle("NTLM", OUTBOUND, ALICE).credential
        context = ntlm.initialize_security_context(cred).new_context
        call = ntlm.async_call("create_async_context")
        ntlm.async_call("delete_security_context_async", call, context=context)
        ntlm.run_async_calls()
        ntlm.async_call("get_async_call_status", call)
        ntlm.delete_security_context(context)
        ntlm.async_call("free_async_context", call)

    # -- the differential campaign -----------------------------------------------------------

    def test_differential(self, capsys: pytest.CaptureFixture[str]) -> None:
        backend = self.make_backend()
        name = backend.capabilities.name
        report = check_backend(
            name,
            lambda: backend,
            examples=self.differential_examples,
            seed_value=self.differential_seed,
            max_rounds=self.differential_max_rounds,
            profile=self.model_profile(),
            known_files=self.known_files(),
        )
        text = CheckReport((report,), self.differential_seed).render("text")
        if report.new:
            pytest.fail(text, pytrace=False)
        if report.divergences:
            with capsys.disabled():
                print(f"\n{text}")

"""Every repr is valid Python: evaluated where only `import sspi_model` is in scope, it gives the
value back (API-008).

The public value types are found by walking the package, not listed by hand: a new attrs class,
enum or exception in a value module fails `test_every_public_value_type_has_a_strategy` by name
until it gets a strategy here (or a line in NOT_VALUES saying why it has none). Evaluating in the
namespace of `sspi_model.__all__` alone also proves every type a repr names is exported.
"""

from __future__ import annotations

import enum
import functools
import importlib
import inspect
import operator
import pkgutil
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sspi_model
from sspi_model import (
    NULL_DESCRIPTOR,
    AcceptReq,
    AcquireCredentialsResult,
    ApplicationProtocol,
    AsyncContext,
    AsyncOutcome,
    AsyncState,
    AuthIdentity,
    BackendFailure,
    Call,
    CallbackError,
    CallEvent,
    Capabilities,
    Certificate,
    CertificateContext,
    CipherInfo,
    CipherStrengths,
    CompletionEvent,
    ConnectionInfo,
    ContextBindings,
    ContextFlags,
    ContextKeyInfo,
    ContextLifespan,
    ContextNames,
    ContextNativeNames,
    ContextNegotiationInfo,
    ContextPackageInfo,
    ContextReq,
    ContextSessionKey,
    ContextSizes,
    CredentialNames,
    CredentialUse,
    CredState,
    CtxState,
    Divergence,
    EnumerateSecurityPackagesResult,
    Environment,
    Guard,
    HandleClass,
    HandleKind,
    InlineScheduler,
    IssuerListInfoEx,
    KnownDivergence,
    LegOutcome,
    LegResult,
    ManualScheduler,
    MessageLeg,
    MessageOutcome,
    MessageResult,
    Misuse,
    MisuseEvent,
    MisuseReport,
    NotifyEvent,
    NtStatus,
    NullDescriptor,
    Out,
    PackageInfo,
    Profile,
    QueryContextAttributesResult,
    QueryCredentialsAttributesResult,
    QuerySecurityPackageInfoResult,
    RandomScheduler,
    Refs,
    Refusal,
    SchannelCred,
    SecBuffer,
    SecBufferType,
    SecHandle,
    SecPkgAttr,
    SecStatus,
    SecurityContextResult,
    SessionInfo,
    Sspi,
    SspiMisuse,
    Statistics,
    StatusInfo,
    StreamSizes,
    SupportedAlgs,
    SupportedProtocols,
    ThreadedScheduler,
    Transition,
    lookup,
)
from sspi_model.async_api import PendingCall
from sspi_model.lifecycle import TABLES, verdicts
from sspi_model.packages import ntlm, schannel, schannel_creds

# -- where the value types live ---------------------------------------------------------------

# The modules whose public classes are the model's values; every attrs class, enum and
# exception defined in them needs a strategy below.
VALUE_MODULES = (
    "sspi_model.async_api",
    "sspi_model.backends.base",
    "sspi_model.buffers",
    "sspi_model.constants",
    "sspi_model.events",
    "sspi_model.handles",
    "sspi_model.lifecycle",
    "sspi_model.packages.base",
    "sspi_model.packages.ntlm",
    "sspi_model.packages.schannel",
    "sspi_model.packages.schannel_creds",
    "sspi_model.profiles",
    "sspi_model.results",
    "sspi_model.status",
    "sspi_model.testing.divergence",
)
# Every other module, and why its classes are not public values of the model ("pkg.*": the
# package and everything under it).
TOOLING_MODULES = {
    "sspi_model.backends": "the package: re-exports",
    "sspi_model.backends.agent": "the agent backend and its process plumbing (protocol, pipes)",
    "sspi_model.backends.wine": "finding Wine, building the agent, the prefix and wineserver",
    "sspi_model.backends.async_adapter": "an adapter object, not a value",
    "sspi_model.backends.model": "a backend object, not a value",
    "sspi_model.backends.native.*": "the native backend's plumbing (worker, frames, ctypes)",
    "sspi_model.cli": "the command line: its exceptions end as exit codes",
    "sspi_model.diagrams": "diagram generation: internal records of the generator",
    "sspi_model.packages": "the package registry: re-exports",
    "sspi_model.packages.negotiate": "package sessions: objects, not values",
    "sspi_model.packages.alpn": "the ALPN buffer codec: functions, and its exception",
    "sspi_model.packages.catalog": "package names and infos, and a stand-in that loads one",
    "sspi_model.packages.ntlm_messages": "NTLM's message functions: functions, no values",
    "sspi_model.packages.protection": "a protection channel: an object with state (counters)",
    "sspi_model.packages.tls_records": "Schannel's record reader: internal records of one call",
    "sspi_model.rulebook": "the rulebook loader's records",
    "sspi_model.scenarios": "the demo scenarios' records",
    "sspi_model.sequence": "sequence diagrams: a drawing and a state listener, not values",
    "sspi_model.scheduling": "schedulers: objects with state (their reprs rebuild a fresh one)",
    "sspi_model.sspi": "the Sspi instance",
    "sspi_model.values": "the values' common base (their repr), no value of its own",
    "sspi_model.sync_core": "the synchronous core's records: objects with state",
    "sspi_model.async_layer": "the async layer: an object with state",
    "sspi_model.async_calls": "the public async API of a host: methods, no values",
    "sspi_model.envelope": "the API envelope: a decorator",
    "sspi_model.arguments": "argument checks: functions",
    "sspi_model.explore.*": "the explorer: schedulers, searches and their reports",
    "sspi_model.sanitizer": "the sanitizer: an observer with state and its findings",
    "sspi_model.testing.*": "the conformance kit's reports (testing.divergence is a value module)",
    "sspi_model.trace.*": "the trace recorder and replayer's records",
}
# Public classes that are deliberately not values (README, "What prints as <...>").
NOT_VALUES: dict[type, str] = {
    Sspi: "the model instance: a subsystem with state, opaque",
    AsyncContext: "SspiAsyncContext*: opaque, handed back to the API",
    PendingCall: "a queued call a scheduler completes: opaque",
    ManualScheduler: "a scheduler: an object with state",
    InlineScheduler: "a scheduler: an object with state",
    RandomScheduler: "a scheduler: an object with state",
    ThreadedScheduler: "a scheduler: an object with state (a thread)",
    ntlm.NtlmCredential: "credential material, private to the NTLM package",
    ntlm.TokenError: "raised and caught inside the NTLM package",
    schannel.SchannelCredential: "credential material, private to the Schannel package",
    schannel.TokenError: "raised and caught inside the Schannel package",
    schannel_creds.Resolved: "what the Schannel package reads from a caller's structure",
}
NAMESPACE = {name: getattr(sspi_model, name) for name in sspi_model.__all__}

# -- strategies -------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
text = st.text(max_size=20)
texts = st.lists(text, max_size=3).map(tuple)
rule_ids = st.lists(
    st.builds(
        "{}-{:03d}".format, st.sampled_from(["API", "ASY", "DEL", "HDL"]), st.integers(0, 999)
    ),
    max_size=3,
).map(tuple)
statuses = st.one_of(st.sampled_from(SecStatus), st.sampled_from(NtStatus))


def flags(kind: type[enum.IntFlag]) -> st.SearchStrategy[Any]:
    """Named members in any combination, zero, and any 32 bits (unnamed ones too)."""
    members = st.lists(st.sampled_from(list(kind)), max_size=4)
    return st.one_of(
        members.map(lambda chosen: functools.reduce(operator.or_, chosen, kind(0))),
        u32.map(kind),
    )


handles = st.builds(SecHandle, u64, u64)
buffers = st.builds(
    SecBuffer,
    buffer_type=st.one_of(u32, st.sampled_from(SecBufferType)),
    data=st.binary(max_size=16),
    size=st.none() | u32,
    allocation=st.none() | u64,
)
buffer_lists = st.lists(buffers, max_size=3).map(tuple)
context_attrs = st.one_of(u32, flags(ContextReq), flags(AcceptReq))
package_infos = st.builds(PackageInfo, text, text, u32, u32, u32, u32)
context_sizes = st.builds(ContextSizes, u32, u32, u32, u32)
stream_sizes = st.builds(StreamSizes, u32, u32, u32, u32, u32)
context_attributes = st.one_of(
    context_sizes,
    stream_sizes,
    st.builds(ContextNames, text, u64),
    st.builds(ContextLifespan, i64, i64),
    st.builds(ContextPackageInfo, package_infos, u64),
)
states = st.one_of(
    st.sampled_from(CtxState), st.sampled_from(CredState), st.sampled_from(AsyncState)
)
certificates = st.builds(Certificate, text, st.booleans())
tls_parameters = st.builds(
    schannel_creds.TlsParameters, st.tuples(text) | st.just(()), st.integers(0, 2**32 - 1), u32
)
auth_identities = st.builds(AuthIdentity, text, text, text)
outs = st.builds(
    Out,
    credential=st.none() | handles,
    new_context=st.none() | handles,
    output=buffer_lists,
    context_attr=context_attrs,
    expiry=st.none() | i64,
    input_after=st.none() | buffer_lists,
    written=st.booleans(),
)
acquire_results = st.builds(
    AcquireCredentialsResult, statuses, st.none() | handles, st.none() | i64
)
context_results = st.builds(
    SecurityContextResult,
    statuses,
    st.none() | handles,
    buffer_lists,
    context_attrs,
    st.none() | i64,
    st.none() | buffer_lists,
)
query_results = st.builds(QueryContextAttributesResult, statuses, st.none() | context_attributes)
results = st.one_of(acquire_results, context_results, query_results)
# What an API call's arguments and an event's payload hold when they are values.
argument_values = st.one_of(
    st.none(),
    st.booleans(),
    i64,
    text,
    st.binary(max_size=8),
    handles,
    buffer_lists,
    flags(ContextReq),
    st.sampled_from(CredentialUse),
    auth_identities,
)
SSPI = Sspi()
ASYNC_CONTEXT = SSPI.create_async_context()

TABLE_VERDICTS: dict[type, list[Any]] = {Transition: [], Refusal: [], Misuse: []}
for _table in TABLES:
    for _entry in _table.entries.values():
        for _path, _verdict in verdicts(_entry):
            TABLE_VERDICTS[type(_verdict)].append(_verdict)

STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    # status.py
    SecStatus: st.sampled_from(SecStatus),
    NtStatus: st.sampled_from(NtStatus),
    StatusInfo: st.one_of(
        st.builds(lookup, st.one_of(u32, st.sampled_from([*SecStatus, *NtStatus]).map(str))),
        st.builds(StatusInfo, u32, text, text, st.sampled_from(["SECURITY_STATUS", "NTSTATUS"])),
    ),
    # handles.py, buffers.py, constants.py
    SecHandle: handles,
    HandleKind: st.sampled_from(HandleKind),
    HandleClass: st.sampled_from(HandleClass),
    SecBufferType: st.sampled_from(SecBufferType),
    NullDescriptor: st.just(NULL_DESCRIPTOR),
    SecBuffer: buffers,
    ContextReq: flags(ContextReq),
    AcceptReq: flags(AcceptReq),
    CredentialUse: st.sampled_from(CredentialUse),
    SecPkgAttr: st.sampled_from(SecPkgAttr),
    # results.py: results and query payloads
    AcquireCredentialsResult: acquire_results,
    SecurityContextResult: context_results,
    QueryContextAttributesResult: query_results,
    ContextNames: st.builds(ContextNames, text, u64),
    ContextNegotiationInfo: st.builds(ContextNegotiationInfo, package_infos, u32, u64),
    ContextNativeNames: st.builds(ContextNativeNames, text, text, u64, u64),
    ContextFlags: st.builds(ContextFlags, u32),
    ContextKeyInfo: st.builds(ContextKeyInfo, text, text, u32, u32, u32, u64, u64),
    ContextSessionKey: st.builds(ContextSessionKey, st.binary(max_size=32), u64),
    ContextBindings: st.builds(ContextBindings, st.binary(max_size=32), u64),
    ApplicationProtocol: st.builds(ApplicationProtocol, u32, u32, st.binary(max_size=16)),
    SessionInfo: st.builds(SessionInfo, u32, st.binary(max_size=32)),
    ConnectionInfo: st.builds(ConnectionInfo, *[u32] * 7),
    CipherInfo: st.builds(
        CipherInfo, *[u32] * 4, text, text, u32, u32, text, u32, text, u32, u32, text, u32
    ),
    CertificateContext: st.builds(CertificateContext, text),
    IssuerListInfoEx: st.builds(IssuerListInfoEx, st.tuples(text) | st.just(()), st.none() | u64),
    CredentialNames: st.builds(CredentialNames, text, u64),
    SupportedAlgs: st.builds(SupportedAlgs, st.lists(u32, max_size=3).map(tuple), u64),
    CipherStrengths: st.builds(CipherStrengths, u32, u32),
    SupportedProtocols: st.builds(SupportedProtocols, u32),
    QueryCredentialsAttributesResult: st.builds(
        QueryCredentialsAttributesResult,
        statuses,
        st.none() | st.builds(CredentialNames, text, u64) | st.builds(SupportedProtocols, u32),
    ),
    ContextLifespan: st.builds(ContextLifespan, i64, i64),
    ContextPackageInfo: st.builds(ContextPackageInfo, package_infos, u64),
    EnumerateSecurityPackagesResult: st.builds(
        EnumerateSecurityPackagesResult,
        statuses,
        st.lists(package_infos, max_size=3).map(tuple),
        st.none() | u64,
    ),
    QuerySecurityPackageInfoResult: st.builds(
        QuerySecurityPackageInfoResult, statuses, st.none() | package_infos, st.none() | u64
    ),
    Statistics: st.builds(Statistics, *[st.integers(0, 10**6)] * 6),
    # packages/base.py and the packages' public values
    LegOutcome: st.sampled_from(LegOutcome),
    MessageOutcome: st.sampled_from(MessageOutcome),
    MessageLeg: st.builds(
        MessageLeg,
        statuses,
        st.sampled_from(MessageOutcome),
        buffer_lists,
        st.none() | u32,
        rule_ids,
    ),
    MessageResult: st.builds(MessageResult, statuses, buffer_lists, st.none() | u32),
    LegResult: st.builds(
        LegResult,
        statuses,
        st.sampled_from(LegOutcome),
        st.binary(max_size=8),
        context_attrs,
        buffer_lists,
        st.none() | buffer_lists,
        rule_ids,
    ),
    PackageInfo: package_infos,
    ContextSizes: context_sizes,
    StreamSizes: stream_sizes,
    Environment: st.builds(Environment, st.dictionaries(text, text, max_size=3), text),
    AuthIdentity: auth_identities,
    Certificate: certificates,
    SchannelCred: st.builds(
        SchannelCred, st.none() | certificates, st.sampled_from(sorted(schannel.PROTOCOLS))
    ),
    schannel_creds.LegacySchannelCred: st.builds(
        schannel_creds.LegacySchannelCred,
        u32,
        st.tuples(certificates) | st.just(()),
        u32,
        u32,
        u32,
        u32,
        u32,
        u32,
    ),
    schannel_creds.TlsParameters: tls_parameters,
    schannel_creds.SchCredentials: st.builds(
        schannel_creds.SchCredentials,
        u32,
        u32,
        st.tuples(certificates) | st.just(()),
        u32,
        u32,
        st.tuples(tls_parameters) | st.just(()),
    ),
    Profile: st.builds(
        Profile,
        text,
        text,
        st.sampled_from(SecStatus),
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.booleans(),
        st.sampled_from(NtStatus),
    ),
    # lifecycle.py
    Call: st.sampled_from(Call),
    CredState: st.sampled_from(CredState),
    CtxState: st.sampled_from(CtxState),
    AsyncState: st.sampled_from(AsyncState),
    Refs: st.sampled_from(Refs),
    AsyncOutcome: st.sampled_from(AsyncOutcome),
    # Real table entries (guards, misuse continuations, outcome rules) and generated ones.
    Transition: st.sampled_from(TABLE_VERDICTS[Transition])
    | st.builds(
        Transition,
        st.dictionaries(st.none() | st.sampled_from(LegOutcome), states, max_size=4),
        rule_ids,
    ),
    Refusal: st.sampled_from(TABLE_VERDICTS[Refusal]) | st.builds(Refusal, statuses, rule_ids),
    Misuse: st.sampled_from(TABLE_VERDICTS[Misuse])
    | st.builds(Misuse, rule_ids.map(" ".join), text),
    Guard: st.sampled_from(
        [
            guard
            for entry in TABLE_VERDICTS[Transition] + TABLE_VERDICTS[Misuse]
            for guard in entry.guards
        ]
    ),
    # events.py (the reporting instance and the async context print as `...`)
    CallEvent: st.builds(
        CallEvent,
        st.just(SSPI),
        st.sampled_from(Call),
        st.dictionaries(text, argument_values | outs, max_size=4),
        st.one_of(statuses, results),
        st.none() | u32,
    ),
    CompletionEvent: st.builds(
        CompletionEvent, st.just(SSPI), u32, st.sampled_from(Call), statuses, st.none() | outs
    ),
    NotifyEvent: st.builds(
        NotifyEvent, st.just(SSPI), u32, st.just(ASYNC_CONTEXT), argument_values
    ),
    MisuseReport: st.builds(MisuseReport, st.just(SSPI), st.sampled_from(Call), text, text),
    # async_api.py
    MisuseEvent: st.builds(MisuseEvent, text, text, st.sampled_from(Call)),
    CallbackError: st.builds(CallbackError, st.sampled_from(Call), u32, text, text),
    Out: outs,
    SspiMisuse: st.builds(SspiMisuse, text, text),
    # backends/base.py
    Capabilities: st.builds(
        Capabilities,
        text,
        st.frozensets(text, max_size=3),
        st.frozensets(text, max_size=3),
        st.booleans(),
        st.booleans(),
    ),
    BackendFailure: st.builds(BackendFailure, text, text),
    # testing/divergence.py
    Divergence: st.builds(
        Divergence,
        text,
        text,
        text,
        text,
        text,
        text,
        rule_ids,
        texts,
        st.none() | text,
        text,
        text,
    ),
    KnownDivergence: st.builds(
        KnownDivergence, text, texts, texts, texts, texts, texts, rule_ids, text
    ),
}
# Types whose repr is fixed in a file another change owns; each stays a strict xfail until then.
AWAITING_FIX: dict[type, str] = {}

# -- the property -----------------------------------------------------------------------------


def round_trip(value: Any) -> Any:
    return eval(repr(value), dict(NAMESPACE))  # a copy: eval adds __builtins__ to it


def assert_same(value: Any, back: Any) -> None:
    assert type(back) is type(value), (repr(value), type(back))
    if isinstance(value, BaseException):
        assert back.args == value.args and vars(back) == vars(value)
    elif isinstance(value, Out):  # a mutable holder, compared by identity: compare its fields
        assert attrs.astuple(back, recurse=False) == attrs.astuple(value, recurse=False)
    else:
        assert back == value
    # Nested values keep their types too (== takes a flag that came back as an int for equal).
    assert shape(back) == shape(value)


def shape(value: Any) -> Any:
    """The value with the type of every part beside it (fields left out of == excluded)."""
    kind = type(value)
    if attrs.has(kind):
        return (kind, tuple(shape(getattr(value, f.name)) for f in attrs.fields(kind) if f.eq))
    if kind in (tuple, list):
        return (kind, tuple(shape(item) for item in value))
    if kind is dict:
        return (kind, tuple((shape(k), shape(v)) for k, v in value.items()))
    if kind in (set, frozenset):
        return (kind, frozenset(shape(item) for item in value))
    if isinstance(value, BaseException):
        return (kind, shape(value.args))
    return (kind, value)


def _case(kind: type) -> Any:
    if kind in AWAITING_FIX:
        return pytest.param(
            kind, id=kind.__name__, marks=pytest.mark.xfail(strict=True, reason=AWAITING_FIX[kind])
        )
    return pytest.param(kind, id=kind.__name__)


@pytest.mark.rule("API-008")
@pytest.mark.parametrize("kind", [_case(kind) for kind in STRATEGIES])
def test_repr_evaluates_back_to_the_value(kind: type) -> None:
    @given(STRATEGIES[kind])
    def check(value: Any) -> None:
        assert isinstance(value, kind)
        assert_same(value, round_trip(value))

    check()


# -- completeness -----------------------------------------------------------------------------


def _public_value_classes(module_name: str) -> set[type]:
    module = importlib.import_module(module_name)
    return {
        obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and obj.__module__ == module_name
        and not name.startswith("_")
        and (attrs.has(obj) or issubclass(obj, (enum.Enum, BaseException)))
    }


@pytest.mark.rule("API-008")
def test_every_public_value_type_has_a_strategy() -> None:
    found: set[type] = set()
    for module_name in VALUE_MODULES:
        found |= _public_value_classes(module_name)
    found |= {obj for obj in NAMESPACE.values() if inspect.isclass(obj)}
    missing = sorted(
        f"{kind.__module__}.{kind.__qualname__}"
        for kind in found
        if kind not in STRATEGIES and kind not in NOT_VALUES
    )
    assert not missing, f"public value types without a repr round-trip strategy: {missing}"


def _is_tooling(module_name: str) -> bool:
    return any(
        module_name == key or (key.endswith(".*") and (module_name + ".").startswith(key[:-1]))
        for key in TOOLING_MODULES
    )


def test_every_module_is_either_a_value_module_or_tooling() -> None:
    unclassified = [
        info.name
        for info in pkgutil.walk_packages(sspi_model.__path__, "sspi_model.")
        if info.name not in VALUE_MODULES
        and info.name != "sspi_model.__main__"
        and not _is_tooling(info.name)
    ]
    assert not unclassified, f"put these in VALUE_MODULES or TOOLING_MODULES: {unclassified}"


@pytest.mark.rule("API-008")
def test_every_value_type_is_exported_under_its_own_name() -> None:
    hidden = [kind.__qualname__ for kind in STRATEGIES if NAMESPACE.get(kind.__name__) is not kind]
    assert not hidden, f"export these from sspi_model: {hidden}"


# -- events from a real run -------------------------------------------------------------------


def _elided(value: Any) -> Any:
    """`value` with every object whose repr is not Python replaced by Ellipsis."""
    if type(value) is dict:
        return {_elided(k): _elided(v) for k, v in value.items()}
    if type(value) in (tuple, list):
        return type(value)(_elided(item) for item in value)
    return ... if repr(value).startswith("<") else value


@pytest.mark.rule("API-008")
def test_events_of_a_real_run_evaluate_to_themselves_less_their_opaque_parts() -> None:
    events: list[Any] = []
    api = Sspi(
        observer=events.append,
        scheduler=InlineScheduler(),
        async_any_package=True,
        strict=False,
    )
    cred = api.acquire_credentials_handle(package="NTLM", credential_use=CredentialUse.OUTBOUND)
    api.initialize_security_context(
        credential=cred.credential,
        target_name="host/srv",
        context_req=ContextReq.CONNECTION | ContextReq.ALLOCATE_MEMORY,
    )
    actx = api.create_async_context()
    api.set_async_notify_callback(actx, lambda context, data: None, "connection 1")
    api.acquire_credentials_handle_async(
        actx, package="NTLM", credential_use=CredentialUse.OUTBOUND, out=Out()
    )
    api.free_async_context(actx)
    api.free_async_context(actx)  # a double free: reported, not raised (strict=False)
    assert {type(event) for event in events} == {
        CallEvent,
        CompletionEvent,
        NotifyEvent,
        MisuseReport,
    }
    for event in events:
        fields = {f.name: _elided(getattr(event, f.name)) for f in attrs.fields(type(event))}
        assert round_trip(event) == type(event)(**fields)
    assert "context_attr=ContextReq.ALLOCATE_MEMORY | ContextReq.CONNECTION" in repr(events[1])


@pytest.mark.rule("API-008")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            ContextReq.CONNECTION | ContextReq.ALLOCATE_MEMORY,
            "ContextReq.ALLOCATE_MEMORY | ContextReq.CONNECTION",
        ),
        (ContextReq(0), "ContextReq(0)"),
        (
            ContextReq.DELEGATE | ContextReq(0x40000000),
            "ContextReq.DELEGATE | ContextReq(0x40000000)",
        ),
        (
            AcceptReq.MUTUAL_AUTH_CLIENT_CERT,
            "AcceptReq.MUTUAL_AUTH",
        ),  # an alias: its canonical name
    ],
)
def test_flags_print_as_an_or_of_members(value: Any, expected: str) -> None:
    assert repr(value) == expected

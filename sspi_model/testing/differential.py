"""The differential state machine: every step on the model and on a backend, compared.

Handles are symbolic (`Sym`): each maps to the model's handle and the backend's raw one, so the
backends may use any values. Tokens travel per side: the model's client token goes to the
model's server and the backend's to the backend's. The first divergence of an example ends the
comparisons of that example: after it the two sides are in different states and further
differences would only be echoes. A divergence that is neither known nor already found in this
run is raised, so Hypothesis shrinks the sequence that leads to it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    multiple,
    precondition,
    rule,
)

from sspi_model.backends.base import Backend, BackendFailure
from sspi_model.backends.model import ModelBackend
from sspi_model.buffers import SecBuffer
from sspi_model.constants import CredentialUse, SecPkgAttr
from sspi_model.handles import HandleClass, HandleKind, SecHandle
from sspi_model.packages.ntlm import AuthIdentity
from sspi_model.status import SecStatus, is_error, lookup
from sspi_model.testing.conformance import RuleTally
from sspi_model.testing.divergence import Divergence, KnownDivergence, classify
from sspi_model.testing.guard import call_timeout, guarded, python_method
from sspi_model.testing.message_shapes import SEND_SHAPES, TAMPERINGS, Descriptor, plaintext

USER, DOMAIN, PASSWORD = "alice", "CONTOSO", "Passw0rd!"
ACCOUNTS = {f"{DOMAIN}\\{USER}": PASSWORD}
ALLOCATED = 0x100  # ISC_RET_ALLOCATED_MEMORY: how a backend gets its buffers is not compared
LITERAL_HANDLES = {
    "NULL": None,
    "zeroed": SecHandle(0, 0),
    "invalidated": SecHandle.invalid(),
    "noncanonical": SecHandle(0x4141414141414141, 0x4242424242424242),
    "unmapped": SecHandle(0x0000100000001000, 0x0000100000002000),
}
GARBAGE_TOKENS = {
    "empty": b"",
    "garbage": bytes(range(7, 71)),
    "ntlm-header-only": b"NTLMSSP\x00\x01\x00\x00\x00",
}
# CONNECTION; with ALLOCATE_MEMORY (the package allocates the token, which changes a real
# library's heap reuse: sspi-rs hangs on use after delete only then); none; the probe's
# CONNECTION|INTEGRITY|CONFIDENTIALITY|REPLAY|SEQUENCE|ALLOCATE_MEMORY; flags NTLM cannot give.
CONTEXT_REQS = (0x800, 0x800 | 0x100, 0, 0x1091C, 0x1 | 0x2 | 0x800)
ATTRIBUTES = (
    SecPkgAttr.SECPKG_ATTR_SIZES,
    SecPkgAttr.SECPKG_ATTR_NAMES,
    SecPkgAttr.SECPKG_ATTR_LIFESPAN,
    SecPkgAttr.SECPKG_ATTR_PACKAGE_INFO,
    0xDEAD,
)
# On an established context also one NTLM does not answer (QCA-004).
ESTABLISHED_ATTRIBUTES = (*ATTRIBUTES, SecPkgAttr.SECPKG_ATTR_STREAM_SIZES)
# The context_req of a whole handshake (establish): CONNECTION; with ALLOCATE_MEMORY; none; the
# usual CONNECTION|CONFIDENTIALITY|REPLAY|SEQUENCE|INTEGRITY. Only requests whose attributes
# both sides can agree on (RS-ATTRIBUTES-ECHOED would end the example before its messages).
ESTABLISH_REQS = (0x800, 0x900, 0, 0x81C)
# A leg that asks the caller to finish it with CompleteAuthToken (the ISC/ASC pages).
_COMPLETE = {
    SecStatus.SEC_I_COMPLETE_NEEDED: SecStatus.SEC_E_OK,
    SecStatus.SEC_I_COMPLETE_AND_CONTINUE: SecStatus.SEC_I_CONTINUE_NEEDED,
}
# Where each message goes (deliver): to its context's peer as sent, or where it does not belong.
ROUTES = ("peer", "peer", "peer", "self", "other-pair")
SEND_CALLS = ("EncryptMessage", "EncryptMessage", "EncryptMessage", "MakeSignature")
# converse seals more often than it signs: a backend without MakeSignature (RS-SIGNATURE-STUB)
# ends the example at its first signature, before the deeper states the other rules reach.
CONVERSE_CALLS = ("EncryptMessage", "EncryptMessage", "EncryptMessage", "MakeSignature")
# How converse delivers the messages it sent: which one, in which order.
DELIVERY_ORDERS: dict[str, Callable[[int], list[int]]] = {
    "in-order": lambda count: list(range(count)),
    "each-twice": lambda count: [index for index in range(count) for _ in (1, 2)],
    "last-first": lambda count: [count - 1, *range(count - 1)],
}
CONVERSE_ORDERS = ("in-order", "in-order", "each-twice", "last-first")
# After a delete in a pair: one call that costs a hang on sspi-rs (RS-USE-AFTER-DELETE: a
# timeout, 0.5 s in check) beside two that do not (its stubs), so the rule stays affordable.
AFTER_DELETE_CALLS = ("EncryptMessage", "MakeSignature", "VerifySignature")


class DivergenceFound(AssertionError):
    """A new divergence: raised so Hypothesis shrinks the steps that lead to it."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(
            f"{divergence.call}({divergence.args}) [{divergence.situation}]: "
            f"{divergence.aspect} expected {divergence.expected}, observed {divergence.observed}"
        )
        self.divergence = divergence


@attrs.define(eq=False)
class Sym:
    """A symbolic handle or token: what it is on the model side and on the backend side."""

    name: str
    kind: str  # "cred", "ctx" or "token"
    model: Any
    subject: Any
    role: str = ""  # "client" or "server"
    deleted: bool = False
    token: tuple[bytes, bytes] = (b"", b"")  # the last output token of a context
    req: int = 0x800  # the context_req of a context's first leg, used on every later leg
    status: int = 0  # the model's status of the context's last leg
    # Messages on an established context, as the model counted them (MSG-007): sent, accepted
    # in order, and whether a delivery was refused (MSG-010 says that changes nothing).
    sent: int = 0
    received: int = 0
    refused_receive: bool = False

    def __repr__(self) -> str:
        return self.name


@attrs.define(eq=False)
class Pair:
    """A client and a server context whose handshake completed on both sides (establish)."""

    name: str
    client: Sym
    server: Sym

    def __repr__(self) -> str:
        return self.name

    def side(self, client: bool) -> Sym:
        return self.client if client else self.server


@attrs.define(eq=False)
class Sent:
    """A message one context of a pair sealed or signed: its buffers on each side."""

    name: str
    pair: Pair
    from_client: bool
    signed: bool  # MakeSignature (else EncryptMessage)
    model: Descriptor
    subject: Descriptor
    plain: bytes  # what the receiver should read back
    number: int  # the sender's how-manieth message (its sequence number on the model)
    delivered: bool = False  # accepted by its peer once already

    def __repr__(self) -> str:
        return self.name


@attrs.frozen
class Outcome:
    status: str
    handle: bool = False
    token: bool = False
    attr: int | None = None
    value: str = ""


# Calls that change nothing on the model (QCA-001, CAT-001) and that the libraries checked so
# far do not use to change state either.
_STATELESS_CALLS = frozenset({"QueryContextAttributesW", "CompleteAuthToken"})
# A message call both sides refused may still have moved the backend's sequence number or key
# stream (what MSG-010 forbids the model), so a divergence on one ends the example.
_MESSAGE_CALLS = frozenset({"MakeSignature", "VerifySignature", "EncryptMessage", "DecryptMessage"})


def _status_value(result: Any) -> int:
    return int(result if isinstance(result, int) else result.status)


def _status_name(value: int) -> str:
    return lookup(value).name


def _outcome(result: Any) -> Outcome:
    if isinstance(result, int):
        return Outcome(_status_name(result))
    status = _status_name(result.status)
    handle = getattr(result, "new_context", None) or getattr(result, "credential", None)
    token = bool(getattr(result, "output_token", b""))
    attr = getattr(result, "context_attr", None)
    buffer = getattr(result, "buffer", None)
    value = type(buffer).__name__ if buffer is not None else ""
    return Outcome(status, handle is not None, token, attr, value)


class DifferentialMachine(RuleBasedStateMachine):
    """Subclassed by `machine_for` with the two backend factories bound."""

    # One instance of each backend serves a whole run; reset() starts each example afresh
    # (for a native library: a fresh worker process).
    model_backend: Backend
    subject_backend: Backend
    known: tuple[KnownDivergence, ...] = ()
    found: set[tuple[str, ...]] = set()  # signatures of divergences already raised this run
    seen: list[Divergence] = []  # every divergence observed this run (known ones too)
    tally: RuleTally = RuleTally()  # which rules agreed and which diverged

    creds = Bundle("creds")
    contexts = Bundle("contexts")
    pairs = Bundle("pairs")
    sent = Bundle("sent")

    def __init__(self) -> None:
        super().__init__()
        self.model = self.model_backend
        self.subject = self.subject_backend
        self.model.reset()
        self.stopped = False
        self.steps: list[str] = []
        self.counter = itertools.count(1)
        self.timeout = call_timeout(self.subject)
        try:
            guarded("reset", self.subject.reset, timeout=self.timeout)
        except BackendFailure as failure:  # CLI-001: a backend that cannot start afresh
            self.steps.append("reset()")
            self._diverged("reset", "", "new-process", "status", "None", failure.outcome, ())

    # -- comparing ---------------------------------------------------------------------------

    def _sym(self, kind: str, model: Any, subject: Any, role: str = "") -> Sym:
        return Sym(f"{kind}{next(self.counter)}", kind, model, subject, role)

    def _situation(self, **handles: Any) -> str:
        parts = []
        for name, value in handles.items():
            kind = HandleKind.CREDENTIAL if name == "credential" else HandleKind.CONTEXT
            if isinstance(value, Sym):
                parts.append(f"{name}={self._handle_class(value, kind)}")
            else:
                parts.append(f"{name}={value}")
        return ",".join(parts)

    def _handle_class(self, sym: Sym, kind: HandleKind) -> str:
        sspi = getattr(self.model, "sspi", None)
        if sspi is None:
            return "deleted" if sym.deleted else "live"
        handle_class: HandleClass = sspi.classify(sym.model, kind)
        if handle_class is HandleClass.LIVE and kind is HandleKind.CONTEXT:
            record = sspi._core.live_context(sym.model)
            return f"{sym.role}-{record.state.value}"
        return str(handle_class.value)

    def _run(
        self,
        call: str,
        args: str,
        situation: str,
        on_model: Callable[[Backend], Any],
        on_subject: Callable[[Backend], Any],
        compare: tuple[str, ...] = ("status", "handle", "token", "attr"),
        creates: bool = False,
    ) -> tuple[Any, Any] | None:
        """Run one step on both sides; None when they diverged (the example stops comparing)."""
        self.steps.append(f"{call}({args})")
        expected_result = on_model(self.model)
        rules = tuple(getattr(self.model, "last_rules", ()))
        expected = _outcome(expected_result)
        try:
            observed_result = guarded(
                python_method(call),
                lambda: on_subject(self.subject),
                model_result=expected_result,
                timeout=self.timeout,
            )
        except BackendFailure as failure:
            self._diverged(call, args, situation, "status", expected.status, failure.outcome, rules)
            return None
        observed = _outcome(observed_result)
        # Both sides refused and made nothing: neither changed state (LIF-005 for the model),
        # so after a known divergence the example may go on.
        subject_refused = is_error(_status_value(observed_result)) and not observed.handle
        model_refused = is_error(_status_value(expected_result)) and not expected.handle
        # A divergence on a call that creates a handle binds nothing, so neither side's new
        # object is reachable afterwards; otherwise both must have refused.
        refused = creates or call in _STATELESS_CALLS or (
            subject_refused and model_refused and call not in _MESSAGE_CALLS
        )
        for aspect in compare:
            want, got = getattr(expected, aspect), getattr(observed, aspect)
            # Attributes mean something only on a leg both sides accepted (the ISC and ASC pages).
            refused_leg = expected.status != observed.status or is_error(
                _status_value(expected_result)
            )
            if aspect == "attr" and (refused_leg or want is None):
                continue
            if aspect == "attr":
                want, got = want & ~ALLOCATED, (got or 0) & ~ALLOCATED
                want, got = hex(want), hex(got)
            if want != got:
                self._diverged(call, args, situation, aspect, str(want), str(got), rules, refused)
                return None
        self.tally.agree(rules)
        return expected_result, observed_result

    def _diverged(
        self,
        call: str,
        args: str,
        situation: str,
        aspect: str,
        expected: str,
        observed: str,
        rules: tuple[str, ...],
        refused: bool = False,
    ) -> None:
        divergence = classify(
            Divergence(call, args, situation, aspect, expected, observed, rules, tuple(self.steps)),
            self.known,
        )
        self.seen.append(divergence)
        self.tally.disagree(rules, divergence)
        if divergence.known is None and divergence.signature not in self.found:
            self.stopped = True
            raise DivergenceFound(divergence)
        self.stopped = not refused

    @precondition(lambda self: self.stopped)
    @rule()
    def idle(self) -> None:
        """After a divergence the example only runs out its steps."""

    # -- credentials -------------------------------------------------------------------------

    @precondition(lambda self: not self.stopped)
    @rule(
        target=creds,
        role=st.sampled_from(["client", "server"]),
        password=st.sampled_from([PASSWORD, PASSWORD, "wrong"]),
        identity=st.sampled_from(["explicit", "explicit", "explicit", "default-logon"]),
    )
    def acquire(self, role: str, password: str, identity: str) -> Any:
        use = CredentialUse.OUTBOUND if role == "client" else CredentialUse.INBOUND
        auth = AuthIdentity(USER, password, DOMAIN) if identity == "explicit" else None
        args = f'"NTLM", {use!r}, {identity}/{"good" if password == PASSWORD else "bad"} password'
        results = self._run(
            "AcquireCredentialsHandleW",
            args,
            f"use={role},auth={identity}",
            lambda b: b.acquire_credentials_handle("NTLM", use, auth),
            lambda b: b.acquire_credentials_handle("NTLM", use, auth),
            creates=True,
        )
        if results is None or results[0].credential is None:
            return _nothing()
        sym = self._sym("cred", results[0].credential, results[1].credential, role)
        self.steps[-1] = f"{sym} = {self.steps[-1]}"
        return sym

    @precondition(lambda self: not self.stopped)
    @rule(
        package=st.sampled_from(["Foo", "ntlm", "NTLM"]),
        use=st.sampled_from([0, 0x1234, 2, 3]),
    )
    def acquire_unusual(self, package: str, use: int) -> None:
        auth = AuthIdentity(USER, PASSWORD, DOMAIN)
        results = self._run(
            "AcquireCredentialsHandleW",
            f"{package!r}, {use:#x}",
            f"package={package},use={use:#x}",
            lambda b: b.acquire_credentials_handle(package, use, auth),
            lambda b: b.acquire_credentials_handle(package, use, auth),
            creates=True,
        )
        if results is not None and results[0].credential is not None:
            model_cred, subject_cred = results[0].credential, results[1].credential
            self._run(
                "FreeCredentialsHandle",
                "the credential just acquired",
                "credential=live",
                lambda b: b.free_credentials_handle(model_cred),
                lambda b: b.free_credentials_handle(subject_cred),
            )

    @precondition(lambda self: not self.stopped)
    @rule(cred=creds)
    def free_credentials(self, cred: Sym) -> None:
        situation = self._situation(credential=cred)
        self._run(
            "FreeCredentialsHandle",
            repr(cred),
            situation,
            lambda b: b.free_credentials_handle(cred.model),
            lambda b: b.free_credentials_handle(cred.subject),
        )
        cred.deleted = True

    # -- legs --------------------------------------------------------------------------------
    # A context carries the last token it produced (model bytes, backend bytes); the peer's
    # next leg takes it from there.

    def _leg(
        self,
        client: bool,
        cred: Sym | None,
        context: Sym | None,
        source: Sym | str | None,
        req: int,
        truncated: bool = False,
        complete: bool = False,
    ) -> Any:
        """One ISC or ASC leg on both sides. With `complete`, each side finishes a leg that
        asks for it with CompleteAuthToken as callers do, and the leg's status is the one the
        caller then has (CLI-018)."""
        call = "InitializeSecurityContextW" if client else "AcceptSecurityContext"
        model_input, subject_input = _token_pair(source, truncated)
        handles: dict[str, Any] = {}
        if cred is not None:
            handles["credential"] = cred
        if context is not None:
            handles["context"] = context
        kind = _token_kind(source, truncated)
        situation = self._situation(**handles) + f",input={kind}"
        token_name = "None" if source is None else f"{kind}" if isinstance(source, str) else (
            f"token_of({source!r}{', truncated' if truncated else ''})"
        )
        args = f"{cred!r}, {context!r}, input={token_name}, req={req:#x}"
        if complete:
            args += ", then CompleteAuthToken if asked"

        def on(side: str) -> Callable[[Backend], Any]:
            def go(backend: Backend) -> Any:
                c = None if cred is None else getattr(cred, side)
                h = None if context is None else getattr(context, side)
                data = model_input if side == "model" else subject_input
                if client:
                    result = backend.initialize_security_context(c, h, "host/srv", req, data)
                else:
                    result = backend.accept_security_context(c, h, data, req)
                return _completed(backend, result, h) if complete else result

            return go

        results = self._run(
            call, args, situation, on("model"), on("subject"), creates=context is None
        )
        if results is None:
            return _nothing()
        model_result, subject_result = results
        tokens = (model_result.output_token, subject_result.output_token)
        if context is not None:
            context.token = tokens
            context.status = int(model_result.status)
            return _nothing()
        if model_result.new_context is None:
            return _nothing()
        role = "client" if client else "server"
        sym = self._sym("ctx", model_result.new_context, subject_result.new_context, role)
        sym.token = tokens
        sym.req = req
        sym.status = int(model_result.status)
        self.steps[-1] = f"{sym} = {self.steps[-1]}"
        return sym

    @precondition(lambda self: not self.stopped)
    @rule(target=contexts, cred=creds, req=st.sampled_from(CONTEXT_REQS))
    def isc_first(self, cred: Sym, req: int) -> Any:
        return self._leg(True, cred, None, None, req)

    @precondition(lambda self: not self.stopped)
    @rule(
        target=contexts,
        cred=creds,
        source=contexts | st.sampled_from(sorted(GARBAGE_TOKENS)),
        truncated=st.booleans(),
    )
    def asc_first(self, cred: Sym, source: Sym | str, truncated: bool) -> Any:
        req = source.req if isinstance(source, Sym) else 0x800
        return self._leg(False, cred, None, source, req, truncated)

    @precondition(lambda self: not self.stopped)
    @rule(
        context=contexts,
        source=contexts | st.sampled_from(sorted(GARBAGE_TOKENS)),
        truncated=st.booleans(),
        with_credential=st.booleans(),
        cred=creds,
    )
    def continue_leg(
        self, context: Sym, source: Sym | str, truncated: bool, with_credential: bool, cred: Sym
    ) -> None:
        client = context.role == "client"
        credential = cred if with_credential else None
        self._leg(client, credential, context, source, context.req, truncated)

    @initialize(target=creds)
    def client_credential(self) -> Any:
        """Every example starts with a client and a server credential, as a real peer pair."""
        return self.acquire("client", PASSWORD, "explicit")

    @initialize(target=creds)
    def server_credential(self) -> Any:
        return self.acquire("server", PASSWORD, "explicit")

    @precondition(lambda self: not self.stopped)
    @rule(
        target=contexts,
        client=creds,
        server=creds,
        legs=st.sampled_from([4, 3, 2, 1]),
        req=st.sampled_from(CONTEXT_REQS),
    )
    def handshake(self, client: Sym, server: Sym, legs: int, req: int) -> Any:
        """Up to four legs in order (ISC, ASC, ISC, ASC): the usual way into deep states."""
        made: list[Sym] = []
        client_ctx = self._leg(True, client, None, None, req)
        if not isinstance(client_ctx, Sym):
            return _nothing()
        made.append(client_ctx)
        if legs >= 2 and not self.stopped:
            server_ctx = self._leg(False, server, None, client_ctx, req)
            if isinstance(server_ctx, Sym):
                made.append(server_ctx)
                if legs >= 3 and not self.stopped:
                    self._leg(True, client, client_ctx, server_ctx, req)
                if legs >= 4 and not self.stopped:
                    self._leg(False, server, server_ctx, client_ctx, req)
        return multiple(*made)

    # -- the rest of a context's life --------------------------------------------------------

    @precondition(lambda self: not self.stopped)
    @rule(context=contexts)
    def complete_auth_token(self, context: Sym) -> None:
        self._run(
            "CompleteAuthToken",
            repr(context),
            self._situation(context=context),
            lambda b: b.complete_auth_token(context.model, b""),
            lambda b: b.complete_auth_token(context.subject, b""),
            compare=("status",),
        )

    @precondition(lambda self: not self.stopped)
    @rule(context=contexts)
    def delete(self, context: Sym) -> None:
        self._run(
            "DeleteSecurityContext",
            repr(context),
            self._situation(context=context),
            lambda b: b.delete_security_context(context.model),
            lambda b: b.delete_security_context(context.subject),
        )
        context.deleted = True

    @precondition(lambda self: not self.stopped)
    @rule(context=contexts, attribute=st.sampled_from(ATTRIBUTES))
    def query(self, context: Sym, attribute: int) -> None:
        name = attribute.name if isinstance(attribute, SecPkgAttr) else f"{attribute:#x}"
        self._run(
            "QueryContextAttributesW",
            f"{context!r}, {name}",
            self._situation(context=context) + f",attribute={name}",
            lambda b: b.query_context_attributes(context.model, attribute),
            lambda b: b.query_context_attributes(context.subject, attribute),
            compare=("status", "value"),
        )

    # -- the message functions (MSG rules), where both backends speak them ---------------------

    def _speaks_messages(self) -> bool:
        return all(
            "encrypt_message" in getattr(backend.capabilities, "calls", ())
            for backend in (self.model, self.subject)
        )

    @precondition(lambda self: not self.stopped and self._speaks_messages())
    @rule(
        sender=contexts,
        receiver=contexts,
        data=st.sampled_from([b"ping", b""]),
        replay=st.booleans(),
    )
    def protect(self, sender: Sym, receiver: Sym, data: bytes, replay: bool) -> None:
        """EncryptMessage {TOKEN(16), DATA} on one context, then DecryptMessage of what each
        side sealed on another (or the same) context, and with `replay` once more (MSG-008)."""
        if sender.deleted or receiver.deleted:
            return  # a message call on a deleted sspi-rs context hangs its thread (probe §4)

        def message() -> list[SecBuffer]:
            return [SecBuffer(2, size=16), SecBuffer(1, data)]

        sealed = self._run(
            "EncryptMessage",
            repr(sender),
            self._situation(context=sender),
            lambda b: b.encrypt_message(sender.model, 0, message()),  # type: ignore[attr-defined]
            lambda b: b.encrypt_message(sender.subject, 0, message()),  # type: ignore[attr-defined]
            compare=("status",),
        )
        if sealed is None or _status_value(sealed[0]) != 0:
            return
        by_model, by_subject = sealed
        for attempt in ("", ", replayed")[: 2 if replay else 1]:
            opened = self._run(
                "DecryptMessage",
                f"{receiver!r}, sealed by {sender!r}{attempt}",
                self._situation(context=receiver, sealed_by=sender) + attempt.replace(", ", ","),
                lambda b: b.decrypt_message(receiver.model, by_model.buffers),  # type: ignore[attr-defined]
                lambda b: b.decrypt_message(receiver.subject, by_subject.buffers),  # type: ignore[attr-defined]
                compare=("status",),
            )
            if opened is None:
                return

    # -- established pairs: the message functions as clients use them ------------------------

    @precondition(lambda self: not self.stopped)
    @rule(
        target=pairs,
        password=st.sampled_from([PASSWORD, PASSWORD, PASSWORD, "wrong"]),
        req=st.sampled_from(ESTABLISH_REQS),
    )
    def establish(self, password: str, req: int) -> Any:
        """A client and a server credential, then the four legs a real caller runs, completing
        a leg that asks for it (CLI-018): the way to an established pair on a backend whose
        final leg wants CompleteAuthToken. (handshake mixes credentials of any direction.)"""
        client = self.acquire("client", password, "explicit")
        server = self.acquire("server", PASSWORD, "explicit") if isinstance(client, Sym) else None
        if not isinstance(client, Sym) or not isinstance(server, Sym) or self.stopped:
            return _nothing()
        return self._establish(client, server, req)

    @initialize(target=pairs, req=st.sampled_from(ESTABLISH_REQS), start=st.booleans())
    def first_pair(self, req: int, start: bool) -> Any:
        """Half the examples also start with an established pair, so that the message steps
        have one from the first step on (CLI-018); the other half start as before, where the
        handshake's own misuse is explored longer."""
        return self.establish(PASSWORD, req) if start else _nothing()

    def _establish(self, client: Sym, server: Sym, req: int) -> Any:
        client_ctx = self._leg(True, client, None, None, req)
        if not isinstance(client_ctx, Sym) or self.stopped:
            return _nothing()
        server_ctx = self._leg(False, server, None, client_ctx, req, complete=True)
        if not isinstance(server_ctx, Sym) or self.stopped:
            return _nothing()
        for context, source, credential in ((client_ctx, server_ctx, client),
                                             (server_ctx, client_ctx, server)):
            self._leg(context is client_ctx, credential, context, source, req, complete=True)
            if self.stopped or context.status not in (0, SecStatus.SEC_I_CONTINUE_NEEDED):
                return _nothing()
        if client_ctx.status != 0 or server_ctx.status != 0:
            return _nothing()
        pair = Pair(f"pair{next(self.counter)}", client_ctx, server_ctx)
        self.steps.append(f"{pair} = ({client_ctx!r}, {server_ctx!r})")
        return pair

    def _message_call(
        self,
        call: str,
        context: Sym,
        qop: int,
        buffers: Callable[[str], Descriptor],
        why: str,
        named: str = "",
    ) -> tuple[Any, Any] | None:
        """One message call on both sides; `why` (no symbol names: it is part of the
        situation, which groups findings) and `named` (the message sent) describe it."""
        method = python_method(call)
        signed_or_sealed = call in ("MakeSignature", "EncryptMessage")

        def on(side: str) -> Callable[[Backend], Any]:
            def go(backend: Backend) -> Any:
                function = getattr(backend, method)
                handle = getattr(context, side)
                if signed_or_sealed:
                    return function(handle, qop, buffers(side))
                return function(handle, buffers(side))

            return go

        situation = self._situation(context=context) + (f",{why}" if why else "")
        args = ", ".join(part for part in (repr(context), named, why) if part)
        return self._run(call, args, situation, on("model"), on("subject"), compare=("status",))

    @precondition(lambda self: not self.stopped and self._speaks_messages())
    @rule(
        target=sent,
        pair=pairs,
        from_client=st.booleans(),
        call=st.sampled_from(SEND_CALLS),
        data=st.sampled_from([b"ping", b"", bytes(range(48))]),
        shape=st.sampled_from(["plain", "plain", "plain", *sorted(set(SEND_SHAPES) - {"plain"})]),
    )
    def send(self, pair: Pair, from_client: bool, call: str, data: bytes, shape: str) -> Any:
        """EncryptMessage or MakeSignature on one side of a pair, in the layout callers use or
        in one they get wrong (MSG-011..013); what both sides sealed or signed is kept to be
        delivered."""
        context = pair.side(from_client)
        if context.deleted:
            return _nothing()  # a deleted sspi-rs context hangs (use_after_delete does that)
        qop, descriptor = SEND_SHAPES[shape](data)
        done = self._message_call(call, context, qop, lambda _side: descriptor, f"shape={shape}")
        if done is None or is_error(_status_value(done[0])):
            return _nothing()
        message = Sent(
            f"msg{next(self.counter)}", pair, from_client, call == "MakeSignature",
            tuple(done[0].buffers), tuple(done[1].buffers), plaintext(descriptor), context.sent,
        )
        context.sent += 1
        self.steps[-1] = f"{message} = {self.steps[-1]}"
        return message

    @precondition(lambda self: not self.stopped and self._speaks_messages())
    @rule(
        message=sent,
        pair=pairs,
        route=st.sampled_from(ROUTES),
        tampering=st.sampled_from(["none", "none", "none", *sorted(set(TAMPERINGS) - {"none"})]),
    )
    def deliver(self, message: Sent, pair: Pair, route: str, tampering: str) -> None:
        """DecryptMessage or VerifySignature of a sent message: at its peer (once, again: a
        replay, or after a later one: a reorder, MSG-008), at the context that sent it, at a
        context of another pair (MSG-006), or changed on the way (MSG-006, MSG-010, MSG-011)."""
        home = message.pair if route in ("peer", "self") else pair
        if route == "other-pair" and home is message.pair:
            route = "peer"  # one pair: there is no other
        receiver = home.side(message.from_client == (route == "self"))
        if receiver.deleted:
            return
        change = TAMPERINGS[tampering]
        buffers = {"model": change(message.model), "subject": change(message.subject)}
        call = "VerifySignature" if message.signed else "DecryptMessage"
        why = f"route={route}" + (f",tampered={tampering}" if tampering != "none" else "")
        if route == "peer":
            why += f",order={_order(message, receiver)}"
        if receiver.refused_receive:
            why += ",after-refused"
        done = self._message_call(call, receiver, 0, buffers.__getitem__, why, repr(message))
        if done is None:
            return
        if is_error(_status_value(done[0])):
            receiver.refused_receive = True
            return
        if route == "peer":
            message.delivered, receiver.received = True, message.number + 1
        if message.signed:
            return
        # Both read it: the model's reader gets the plaintext back; the backend's must too.
        model_plain, subject_plain = (plaintext(tuple(result.buffers)) for result in done)
        if (model_plain == message.plain) != (subject_plain == message.plain):
            args, situation = f"{receiver!r}, {message!r}, {why}", self._situation(context=receiver)
            self._diverged(
                call, args, situation, "data",
                str(model_plain == message.plain), str(subject_plain == message.plain),
                tuple(getattr(self.model, "last_rules", ())),
            )

    @precondition(lambda self: not self.stopped and self._speaks_messages())
    @rule(
        pair=pairs,
        from_client=st.booleans(),
        call=st.sampled_from(CONVERSE_CALLS),
        count=st.integers(1, 3),
        order=st.sampled_from(CONVERSE_ORDERS),
        tampering=st.sampled_from(["none", "none", "data-byte", "signature-byte"]),
    )
    def converse(
        self, pair: Pair, from_client: bool, call: str, count: int, order: str, tampering: str
    ) -> None:
        """A few messages sent one way and delivered to the peer in one step: in order, each
        twice (replays, MSG-008), the last first (a reorder), the first delivery changed on the
        way (MSG-006, then MSG-010 for the rest). send and deliver apart make the other routes
        and interleavings; this is the dense path the examples reach often."""
        sent = []
        for _ in range(count):
            message = self.send(pair, from_client, call, b"ping", "plain")
            if not isinstance(message, Sent) or self.stopped:
                return
            sent.append(message)
        for index, which in enumerate(DELIVERY_ORDERS[order](count)):
            if self.stopped:
                return
            self.deliver(sent[which], pair, "peer", tampering if index == 0 else "none")

    @precondition(lambda self: not self.stopped)
    @rule(pair=pairs, client=st.booleans(), attribute=st.sampled_from(ESTABLISHED_ATTRIBUTES))
    def query_established(self, pair: Pair, client: bool, attribute: int) -> None:
        """QueryContextAttributes on an established context (QCA-001, QCA-003, QCA-004)."""
        context = pair.side(client)
        if not context.deleted:
            self.query(context, attribute)

    @precondition(lambda self: not self.stopped)
    @rule(pair=pairs, client=st.booleans(), token=st.booleans())
    def complete_established(self, pair: Pair, client: bool, token: bool) -> None:
        """CompleteAuthToken on an established context, with an empty token or NULL (CAT-001,
        CAT-003)."""
        context = pair.side(client)
        if context.deleted:
            return
        given = b"" if token else None
        self._run(
            "CompleteAuthToken",
            f"{context!r}, {'empty token' if token else 'NULL'}",
            self._situation(context=context) + f",token={'empty' if token else 'NULL'}",
            lambda b: b.complete_auth_token(context.model, given),
            lambda b: b.complete_auth_token(context.subject, given),
            compare=("status",),
        )

    @precondition(lambda self: not self.stopped and self._speaks_messages())
    @rule(pair=pairs, client=st.booleans(), call=st.sampled_from(AFTER_DELETE_CALLS))
    def use_after_delete(self, pair: Pair, client: bool, call: str) -> None:
        """DeleteSecurityContext on one side of a pair, then a message call on the deleted
        handle (MSG-005): SEC_E_INVALID_HANDLE."""
        context = pair.side(client)
        if not context.deleted:
            self.delete(context)
            if self.stopped:
                return
        qop, descriptor = SEND_SHAPES["plain"](b"ping")
        self._message_call(call, context, qop, lambda _side: descriptor, "")

    # -- handles that are not what they should be --------------------------------------------

    @precondition(lambda self: not self.stopped)
    @rule(
        call=st.sampled_from(["delete", "free", "query", "isc"]),
        literal=st.sampled_from(sorted(LITERAL_HANDLES)),
    )
    def literal_handle(self, call: str, literal: str) -> None:
        handle = LITERAL_HANDLES[literal]
        name, run = _LITERAL_CALLS[call]
        self._run(name, literal, f"handle={literal}", lambda b: run(b, handle),
                  lambda b: run(b, handle), compare=("status", "handle"))

    @precondition(lambda self: not self.stopped)
    @rule(cred=creds)
    def delete_credential_as_context(self, cred: Sym) -> None:
        self._run(
            "DeleteSecurityContext",
            f"{cred!r} (a credential handle)",
            self._situation(context=cred),
            lambda b: b.delete_security_context(cred.model),
            lambda b: b.delete_security_context(cred.subject),
        )

    @precondition(lambda self: not self.stopped)
    @rule(context=contexts)
    def free_context_as_credential(self, context: Sym) -> None:
        self._run(
            "FreeCredentialsHandle",
            f"{context!r} (a context handle)",
            self._situation(credential=context),
            lambda b: b.free_credentials_handle(context.model),
            lambda b: b.free_credentials_handle(context.subject),
        )


def _nothing() -> Any:
    return multiple()


def _order(message: Sent, receiver: Sym) -> str:
    """Where a message delivered to its peer stands in the peer's sequence (MSG-007, MSG-008):
    the next one, one delivered before, one earlier than the last accepted, or one ahead."""
    if message.delivered:
        return "replay"
    if message.number == receiver.received:
        return "next"
    return "late" if message.number < receiver.received else "ahead"


def _completed(backend: Backend, result: Any, context: SecHandle | None) -> Any:
    """A leg as its caller sees it once it called CompleteAuthToken where the leg asked for it
    (SEC_I_COMPLETE_NEEDED, SEC_I_COMPLETE_AND_CONTINUE): CompleteAuthToken's failure, or the
    status the leg would have had without the completion (CLI-018)."""
    after = _COMPLETE.get(result.status)
    if after is None:
        return result
    handle = result.new_context or context
    status = backend.complete_auth_token(handle, result.output)
    return attrs.evolve(result, status=status if is_error(int(status)) else after)


def _token_pair(source: Sym | str | None, truncated: bool) -> tuple[bytes | None, bytes | None]:
    if source is None:
        return None, None
    if isinstance(source, str):
        return GARBAGE_TOKENS[source], GARBAGE_TOKENS[source]
    model, subject = source.token
    if truncated:
        return model[: len(model) // 2], subject[: len(subject) // 2]
    return model, subject


def _token_kind(source: Sym | str | None, truncated: bool) -> str:
    if source is None:
        return "none"
    if isinstance(source, str):
        return source
    if not source.token[0]:
        return "empty"
    return f"{source.role}-token{'-truncated' if truncated else ''}"


_LITERAL_CALLS: dict[str, tuple[str, Callable[[Backend, SecHandle | None], Any]]] = {
    "delete": ("DeleteSecurityContext", lambda b, h: b.delete_security_context(h)),
    "free": ("FreeCredentialsHandle", lambda b, h: b.free_credentials_handle(h)),
    "query": (
        "QueryContextAttributesW",
        lambda b, h: b.query_context_attributes(h, SecPkgAttr.SECPKG_ATTR_SIZES),
    ),
    "isc": (
        "InitializeSecurityContextW",
        lambda b, h: b.initialize_security_context(h, None, "host/srv", 0x800, None),
    ),
}


def machine_for(
    subject: Backend,
    *,
    model: Backend | None = None,
    known: Iterable[KnownDivergence] = (),
    found: set[tuple[str, ...]] | None = None,
    seen: list[Divergence] | None = None,
    tally: RuleTally | None = None,
) -> type[DifferentialMachine]:
    """A DifferentialMachine class comparing `subject` with the model (both reset per example)."""
    attributes = {
        "model_backend": model if model is not None else ModelBackend(accounts=ACCOUNTS),
        "subject_backend": subject,
        "known": tuple(known),
        "found": found if found is not None else set(),
        "seen": seen if seen is not None else [],
        "tally": tally if tally is not None else RuleTally(),
    }
    return type("DifferentialMachine", (DifferentialMachine,), attributes)

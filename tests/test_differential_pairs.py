"""The differential machine's established pairs (CLI-018) and the message steps on them.

A backend whose final ASC asks for CompleteAuthToken (as sspi-rs's does) still gives the
machine established pairs, because the machine completes the leg as callers do; on those
pairs the message functions run on both sides and are compared.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from toy_backends import CorrectBackend

from sspi_model import SecHandle, SecStatus
from sspi_model.backends.base import MESSAGE_CALLS, SYNC_CALLS
from sspi_model.results import MessageResult, SecurityContextResult
from sspi_model.testing.check import check_backend
from sspi_model.testing.conformance import PASS
from sspi_model.testing.differential import (
    PASSWORD,
    DivergenceFound,
    Pair,
    Sent,
    machine_for,
)
from sspi_model.testing.divergence import KnownDivergence
from sspi_model.testing.message_shapes import SEND_SHAPES, TAMPERINGS, plaintext

COMPLETE_NEEDED = SecStatus.SEC_I_COMPLETE_NEEDED


class SpeakingBackend(CorrectBackend):
    """The model under another name, declaring the message functions it speaks."""

    name = "speaking-toy"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.capabilities = attrs.evolve(
            self.capabilities, calls=frozenset(SYNC_CALLS + MESSAGE_CALLS)
        )


class CompletingBackend(SpeakingBackend):
    """The model, but the server's final leg asks for CompleteAuthToken and its context speaks
    no message function until it gets it (sspi-rs's shape, probe section 4 item 10)."""

    name = "completing-toy"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.waiting: set[SecHandle] = set()
        self.completed: list[SecHandle] = []

    def reset(self) -> None:
        super().reset()
        self.waiting, self.completed = set(), []

    def accept_security_context(self, *args: Any, **kwargs: Any) -> SecurityContextResult:
        result = super().accept_security_context(*args, **kwargs)
        context = args[1] if len(args) > 1 else kwargs.get("context")
        if context is not None and result.status == SecStatus.SEC_E_OK:
            self.waiting.add(context)
            return SecurityContextResult(COMPLETE_NEEDED, result.new_context, result.output,
                                         result.context_attr, result.expiry)
        return result

    def complete_auth_token(self, context: SecHandle | None, token: Any) -> SecStatus:
        if context in self.waiting:
            self.waiting.discard(context)
            self.completed.append(context)
            return SecStatus.SEC_E_OK
        return super().complete_auth_token(context, token)

    def encrypt_message(self, context: SecHandle | None, *args: Any) -> MessageResult:
        if context in self.waiting:
            return MessageResult(SecStatus.SEC_E_OUT_OF_SEQUENCE)
        return super().encrypt_message(context, *args)


class ReplayAlteredBackend(SpeakingBackend):
    """The model, but a replayed message is SEC_E_MESSAGE_ALTERED (sspi-rs's answer)."""

    name = "replay-toy"

    def decrypt_message(self, context: SecHandle | None, *args: Any) -> MessageResult:
        result = super().decrypt_message(context, *args)
        if result.status == SecStatus.SEC_E_OUT_OF_SEQUENCE:
            return MessageResult(SecStatus.SEC_E_MESSAGE_ALTERED, result.buffers, result.qop)
        return result


def _machine(subject: Any, known: tuple[KnownDivergence, ...] = ()) -> Any:
    state = machine_for(subject, known=known)()
    client = state.acquire("client", PASSWORD, "explicit")
    server = state.acquire("server", PASSWORD, "explicit")
    return state, client, server


@pytest.mark.rule("CLI-018")
def test_a_final_leg_that_asks_for_completion_is_completed_and_the_pair_established() -> None:
    subject = CompletingBackend()
    state, client, server = _machine(subject)
    pair = state._establish(client, server, 0x800)
    assert isinstance(pair, Pair) and not state.stopped
    assert subject.completed == [pair.server.subject]
    assert "then CompleteAuthToken if asked" in state.steps[-2]
    message = state.send(pair, True, "EncryptMessage", b"ping", "plain")
    assert isinstance(message, Sent) and message.plain == b"ping"
    state.deliver(message, pair, "peer", "none")
    assert not state.stopped


@pytest.mark.rule("CLI-018")
def test_a_wrong_password_fails_the_completed_leg_on_both_sides() -> None:
    state, _client, server = _machine(CompletingBackend())
    wrong = state.acquire("client", "wrong", "explicit")
    assert not isinstance(state._establish(wrong, server, 0x800), Pair)
    assert not state.stopped  # SEC_E_LOGON_DENIED on both sides: no divergence


@pytest.mark.rule("MSG-008", "CLI-018")
def test_a_replay_the_backend_calls_altered_is_found_and_ends_the_example() -> None:
    state, client, server = _machine(ReplayAlteredBackend())
    pair = state._establish(client, server, 0x800)
    message = state.send(pair, True, "EncryptMessage", b"ping", "plain")
    state.deliver(message, pair, "peer", "none")
    with pytest.raises(DivergenceFound, match="expected SEC_E_OUT_OF_SEQUENCE, observed SEC_E_M"):
        state.deliver(message, pair, "peer", "none")
    # Known, it still ends the example: both refused, but the backend's state may have moved.
    known = KnownDivergence("TOY-REPLAY", ("DecryptMessage",), ("*",), ("status",), ("*",),
                            ("SEC_E_MESSAGE_ALTERED",), ("MSG-008",), "the toy's replay")
    state, client, server = _machine(ReplayAlteredBackend(), (known,))
    pair = state._establish(client, server, 0x800)
    message = state.send(pair, True, "EncryptMessage", b"ping", "plain")
    state.deliver(message, pair, "peer", "none")
    state.deliver(message, pair, "peer", "none")
    assert state.stopped


@pytest.mark.rule("MSG-001", "MSG-005", "MSG-006", "MSG-007", "MSG-011", "QCA-001", "CAT-003")
def test_the_model_against_itself_exercises_the_message_rules_on_pairs() -> None:
    report = check_backend("speaking-toy", SpeakingBackend, examples=100, max_rounds=1)
    verdicts = {row.rule.id: row.verdict for row in report.rules}
    for rule in ("MSG-001", "MSG-005", "MSG-006", "MSG-007", "MSG-008", "MSG-011", "QCA-001",
                 "QCA-003", "QCA-004", "CAT-001", "CAT-003"):
        assert verdicts[rule] == PASS, (rule, verdicts[rule])


def test_shapes_and_tamperings_treat_both_sides_alike() -> None:
    qop, descriptor = SEND_SHAPES["readonly-data"](b"ping")
    assert qop == 0 and plaintext(descriptor) == b"header"  # the READONLY buffer stays readable
    assert SEND_SHAPES["null-descriptor"](b"x") == (0, None)
    _qop, plain = SEND_SHAPES["plain"](b"ping")
    assert plain is not None
    assert TAMPERINGS["data-byte"](plain) != plain and TAMPERINGS["none"](plain) == plain
    assert TAMPERINGS["no-token"](plain) == plain[1:]  # TOKEN first, DATA second
    assert TAMPERINGS["null-descriptor"](plain) is None

"""Thread stress (issue 15): several threads hammer one shared `Sspi(thread_safe=True)` whose
ThreadedScheduler completes their async calls on its worker. Every callback runs exactly once,
handles are never issued twice, statistics never go negative (a monitor samples them
throughout), nothing deadlocks (every wait has a timeout) and nothing is left at the end.

Bounded for CI; HYPOTHESIS_PROFILE=thorough runs ten times as many rounds.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import Any

import attrs
import pytest

from sspi_model import (
    AuthIdentity,
    CredentialUse,
    Out,
    SecHandle,
    SecStatus,
    Sspi,
    ThreadedScheduler,
)

THREADS = 6
ROUNDS = 1500 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 150
TIMEOUT = 120.0
OK, CONTINUE = SecStatus.SEC_E_OK, SecStatus.SEC_I_CONTINUE_NEEDED
ACCOUNTS = {"CONTOSO\\alice": "Passw0rd!"}
IDENTITY = AuthIdentity(user="alice", password="Passw0rd!", domain="CONTOSO")


class _Hammer:
    """What the threads share: the instance, and the counters the checks read."""

    def __init__(self) -> None:
        self.scheduler = ThreadedScheduler()
        self.sspi = Sspi(accounts=ACCOUNTS, scheduler=self.scheduler, async_any_package=True)
        self.sspi.thread_safe = True
        self.lock = threading.Lock()
        self.callbacks: collections.Counter[tuple[int, int, str]] = collections.Counter()
        self.issued: list[SecHandle] = []
        self.calls = 0
        self.errors: list[str] = []

    def count(self, calls: int, *handles: SecHandle | None) -> None:
        with self.lock:
            self.calls += calls
            self.issued.extend(h for h in handles if h is not None)

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            with self.lock:
                self.errors.append(what)

    def callback(self, done: threading.Event) -> Any:
        def notify(ctx: Any, key: tuple[int, int, str]) -> None:
            # On the worker: the API is re-entered, and run_all() from here returns (ROB-005).
            self.check(
                self.sspi.get_async_call_status(ctx) != SecStatus.SEC_I_ASYNC_CALL_PENDING,
                f"{key}: pending in its own callback",
            )
            if key[2] == "delete-server":
                self.scheduler.run_all()
            with self.lock:
                self.callbacks[key] += 1
            done.set()

        return notify

    def handshake(self) -> tuple[SecHandle, SecHandle, SecHandle, SecHandle]:
        sspi = self.sspi
        ccred = sspi.acquire_credentials_handle("NTLM", CredentialUse.OUTBOUND, IDENTITY).credential
        scred = sspi.acquire_credentials_handle("NTLM", CredentialUse.INBOUND).credential
        assert ccred is not None and scred is not None
        leg1 = sspi.initialize_security_context(ccred, None, "host/srv")
        acc1 = sspi.accept_security_context(scred, None, leg1.output_token)
        leg2 = sspi.initialize_security_context(ccred, leg1.new_context, None, 0, acc1.output_token)
        acc2 = sspi.accept_security_context(scred, acc1.new_context, leg2.output_token)
        self.check(
            [leg1.status, acc1.status, leg2.status, acc2.status] == [CONTINUE, CONTINUE, OK, OK],
            f"handshake: {leg1.status!r} {acc1.status!r} {leg2.status!r} {acc2.status!r}",
        )
        assert leg1.new_context is not None and acc1.new_context is not None
        self.count(6, ccred, scred, leg1.new_context, acc1.new_context)
        return ccred, scred, leg1.new_context, acc1.new_context

    def async_call(self, key: tuple[int, int, str], queue: Any, **kwargs: Any) -> Any:
        """Queue one async call with a callback, wait for it (with a timeout), free its context."""
        sspi = self.sspi
        done = threading.Event()
        actx = sspi.create_async_context()
        sspi.set_async_notify_callback(actx, self.callback(done), key)
        status = queue(actx, **kwargs)
        self.check(status == OK, f"{key}: queued {status!r}")
        self.check(done.wait(TIMEOUT), f"{key}: the callback never ran (a hang)")
        result = sspi.get_async_call_status(actx)
        sspi.free_async_context(actx)
        self.count(5)
        return result

    def round(self, thread: int, index: int) -> None:
        sspi = self.sspi
        ccred, scred, cctx, sctx = self.handshake()
        out = Out()
        status = self.async_call(
            (thread, index, "acquire"),
            sspi.acquire_credentials_handle_async,
            package="NTLM",
            credential_use=CredentialUse.OUTBOUND,
            out=out,
        )
        self.check(status == OK and out.written, f"async acquire: {status!r}")
        self.count(0, out.credential)
        query = sspi.query_context_attributes(cctx, 0)
        self.check(query.status == OK, f"query: {query.status!r}")
        for key, context in (("delete-client", cctx), ("delete-server", sctx)):
            status = self.async_call(
                (thread, index, key), sspi.delete_security_context_async, context=context
            )
            self.check(status == OK, f"async delete: {status!r}")
        for credential in (ccred, scred, out.credential):
            self.check(sspi.free_credentials_handle(credential) == OK, "free")
        self.count(4)


def _run(hammer: _Hammer) -> None:
    stop = threading.Event()

    def work(thread: int) -> None:
        try:
            for index in range(ROUNDS):
                hammer.round(thread, index)
        except BaseException as error:
            hammer.check(False, f"thread {thread} raised {error!r}")

    def monitor() -> None:  # statistics sampled while the threads run
        while not stop.is_set():
            stats = hammer.sspi.statistics()
            hammer.check(all(value >= 0 for value in attrs.astuple(stats)), f"negative: {stats!r}")
            time.sleep(0.001)

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(THREADS)]
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    watcher.join(TIMEOUT)
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"deadlock or hang: {hung} still running after {TIMEOUT} s"


@pytest.mark.rule("API-006")
def test_threads_sharing_one_instance_keep_every_invariant() -> None:
    hammer = _Hammer()
    started = time.perf_counter()
    _run(hammer)
    waiter = threading.Thread(target=hammer.scheduler.run_all, daemon=True)
    waiter.start()
    waiter.join(TIMEOUT)
    assert not waiter.is_alive(), "run_all() hung"
    elapsed = time.perf_counter() - started
    assert hammer.errors == []
    expected = {
        (thread, index, key)
        for thread in range(THREADS)
        for index in range(ROUNDS)
        for key in ("acquire", "delete-client", "delete-server")
    }
    assert set(hammer.callbacks) == expected
    assert set(hammer.callbacks.values()) == {1}  # every callback exactly once
    assert hammer.sspi.notifications == len(expected)
    keys = [(h.lower, h.upper) for h in hammer.issued]
    assert len(keys) == len(set(keys)), "a handle was issued twice"
    stats = hammer.sspi.statistics()
    assert not stats.anything_alive, stats
    assert hammer.sspi.callback_errors == [] and hammer.sspi.misuse_events == []
    hammer.sspi.close()
    print(f"{hammer.calls} calls from {THREADS} threads in {elapsed:.2f} s")

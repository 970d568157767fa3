"""The model's async layer over a backend's synchronous calls.

The Sspi*Async API exists only in kernel mode (ksecdd.sys): no user-mode library can run it.
AsyncAdapter runs the model's own AsyncLayer (async contexts, queueing rules, schedulers,
callbacks, misuse detection) with a BackendPort as its synchronous side, so each queued
operation executes as the backend's synchronous call at completion. Async sequences then run
against a real library's handle semantics; what is checked of the async API itself is the
model's, not the library's.
"""

from __future__ import annotations

import threading
from typing import Any

from sspi_model.async_api import CallbackError, MisuseEvent
from sspi_model.async_calls import AsyncCalls
from sspi_model.async_layer import AsyncLayer
from sspi_model.backends.base import Backend
from sspi_model.buffers import SecBuffer
from sspi_model.events import Observer
from sspi_model.handles import HandleClass, HandleKind, SecHandle
from sspi_model.lifecycle import Call
from sspi_model.profiles import Profile, resolve_profile
from sspi_model.results import AcquireCredentialsResult, PackageInfo, SecurityContextResult
from sspi_model.scheduling import ManualScheduler, Scheduler
from sspi_model.status import SecStatus


class BackendPort:
    """The async layer's SyncPort over a backend: its synchronous calls, and the handles it
    returned through the adapter (the only ones the adapter knows to be live)."""

    def __init__(self, backend: Backend, profile: Profile) -> None:
        self.backend = backend
        self.profile = profile
        self.last_rules: tuple[str, ...] = ()  # a backend names no rules
        self.credentials: set[SecHandle] = set()
        self.contexts: set[SecHandle] = set()

    def acquire(
        self, package_name: str | None, use: int, auth_data: Any, principal: str | None
    ) -> AcquireCredentialsResult:
        result = self.backend.acquire_credentials_handle(
            package_name, use, auth_data, principal=principal
        )
        if result.credential is not None:
            self.credentials.add(result.credential)
        return result

    def free_credential(self, handle: SecHandle | None) -> SecStatus:
        status = self.backend.free_credentials_handle(handle)
        if status == SecStatus.SEC_E_OK and handle is not None:
            self.credentials.discard(handle)
        return status

    def delete(self, context: SecHandle | None) -> SecStatus:
        # Called when the delete is queued: the handle is invalid from then on (ASY-042).
        status = self.backend.delete_security_context(context)
        if context is not None:
            self.contexts.discard(context)
        return status

    def leg(
        self,
        call: Call,
        credential: SecHandle | None,
        context: SecHandle | None,
        target_name: str | None,
        context_req: int,
        input: tuple[SecBuffer, ...] | None,
        output: tuple[SecBuffer, ...] | None,
        target_data_rep: int = 0x10,
    ) -> SecurityContextResult:
        if call is Call.INITIALIZE_SECURITY_CONTEXT:
            result = self.backend.initialize_security_context(
                credential, context, target_name, context_req, input
            )
        else:
            result = self.backend.accept_security_context(credential, context, input, context_req)
        if result.new_context is not None:
            self.contexts.add(result.new_context)
        return result

    def is_live_context(self, handle: SecHandle | None) -> bool:
        return True  # unknown handles go through: the backend decides about them

    def package_of(
        self, credential: SecHandle | None, context: SecHandle | None
    ) -> PackageInfo | None:
        return None  # every package the backend has may run async here (ASY-060 lifted)

    def package_named(self, name: str | None) -> PackageInfo | None:
        return None

    def classify(self, handle: SecHandle | None, kind: HandleKind) -> HandleClass:
        if handle is None:
            return HandleClass.NULL
        live = self.contexts if kind is HandleKind.CONTEXT else self.credentials
        return HandleClass.LIVE if handle in live else HandleClass.NEVER_ISSUED


class AsyncAdapter(AsyncCalls):
    """`adapter.delete_security_context_async(ctx, context=h)` runs `backend.delete_...` later.

    The adapter knows which handles are live only from what the backend returned through it:
    a handle it never saw is passed through unchecked, as the kernel would hand it on. The
    synchronous calls are the backend's own, passed through, so one object serves a scenario.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        scheduler: Scheduler | None = None,
        profile: str | Profile = "documented",
        strict: bool = True,
    ) -> None:
        self.backend = backend
        self._port = BackendPort(backend, resolve_profile(profile))
        # The envelope's state (envelope.py): always a real lock, the adapter does not try to
        # prove no second thread can enter.
        self._held = threading.RLock()
        self._thread = threading.get_ident()
        self._observer: Observer | None = None
        self._scheduler = scheduler if scheduler is not None else ManualScheduler()
        self._entry: Scheduler | None = self._scheduler
        self._async = AsyncLayer(
            self._port, self, self._scheduler, strict=strict, async_any_package=True
        )

    def __repr__(self) -> str:
        return f"AsyncAdapter({self.backend!r})"

    @property
    def profile(self) -> Profile:
        return self._port.profile

    @property
    def strict(self) -> bool:
        return self._async.strict

    @property
    def observer(self) -> Observer | None:
        return self._observer

    @observer.setter
    def observer(self, observer: Observer | None) -> None:
        self._observer = observer

    @property
    def misuse_events(self) -> list[MisuseEvent]:
        return self._async.misuse_events

    @property
    def callback_errors(self) -> list[CallbackError]:
        return self._async.callback_errors

    @property
    def notifications(self) -> int:
        return self._async.notifications

    def classify(self, handle: SecHandle | None, kind: HandleKind) -> HandleClass:
        return self._port.classify(handle, kind)

    def statistics(self) -> dict[str, int]:
        return self._async.statistics()

    # The synchronous calls, passed through so one object serves a whole scenario.

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # the adapter's own state: never the backend's
            raise AttributeError(name)
        return getattr(self.backend, name)

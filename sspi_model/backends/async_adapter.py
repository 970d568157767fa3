"""The model's async layer over a backend's synchronous calls.

The Sspi*Async API exists only in kernel mode (ksecdd.sys): no user-mode library can run it.
This adapter keeps the model's async contexts, queueing rules, schedulers, callbacks and misuse
detection, and executes each queued operation as the backend's synchronous call at completion.
So async sequences run against a real library's handle semantics; what is checked of the async
API itself is the model's, not the library's.
"""

from __future__ import annotations

import threading
from typing import Any

from sspi_model.async_api import AsyncApi
from sspi_model.backends.base import Backend
from sspi_model.buffers import SecBuffer
from sspi_model.handles import HandleClass, HandleKind, SecHandle
from sspi_model.lifecycle import Call
from sspi_model.profiles import Profile, resolve_profile
from sspi_model.results import AcquireCredentialsResult, SecurityContextResult
from sspi_model.scheduling import Scheduler
from sspi_model.status import SecStatus


class AsyncAdapter(AsyncApi):
    """`adapter.delete_security_context_async(ctx, context=h)` runs `backend.delete_...` later.

    The adapter knows which handles are live only from what the backend returned through it:
    a handle it never saw is passed through unchecked, as the kernel would hand it on.
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
        self.profile = self._profile = resolve_profile(profile)
        self.observer = self._observer = None
        # Always a real lock: the adapter does not try to prove no second thread can enter.
        self._lock = self._held = threading.RLock()
        self._init_async(scheduler, strict, async_any_package=True)
        self._entry = self._scheduler = self.scheduler
        self._credentials: set[SecHandle] = set()
        self._contexts: set[SecHandle] = set()

    def __repr__(self) -> str:
        return f"AsyncAdapter({self.backend!r})"

    # The hooks AsyncApi calls at queue and completion time.

    def _acquire(
        self, package_name: str | None, use: int, auth_data: Any, principal: str | None
    ) -> AcquireCredentialsResult:
        result = self.backend.acquire_credentials_handle(
            package_name, use, auth_data, principal=principal
        )
        if result.credential is not None:
            self._credentials.add(result.credential)
        return result

    def _free_credential(self, handle: SecHandle | None) -> SecStatus:
        status = self.backend.free_credentials_handle(handle)
        if status == SecStatus.SEC_E_OK and handle is not None:
            self._credentials.discard(handle)
        return status

    def _delete(self, context: SecHandle | None) -> SecStatus:
        # Called when the delete is queued: the handle is invalid from then on (ASY-042).
        status = self.backend.delete_security_context(context)
        if context is not None:
            self._contexts.discard(context)
        return status

    def _leg(
        self,
        call: Call,
        credential: SecHandle | None,
        context: SecHandle | None,
        target_name: str | None,
        context_req: int,
        inputs: tuple[SecBuffer, ...] | None,
        outputs: tuple[SecBuffer, ...] | None,
    ) -> SecurityContextResult:
        if call is Call.INITIALIZE_SECURITY_CONTEXT:
            result = self.backend.initialize_security_context(
                credential, context, target_name, context_req, inputs
            )
        else:
            result = self.backend.accept_security_context(credential, context, inputs, context_req)
        if result.new_context is not None:
            self._contexts.add(result.new_context)
        return result

    def _live_context(self, handle: SecHandle | None) -> Any:
        return handle  # unknown handles go through: the backend decides about them

    def _live_credential(self, handle: SecHandle | None) -> Any:
        return handle

    def _effect_package(self, credential: SecHandle | None, context: SecHandle | None) -> Any:
        return None  # every package the backend has may run async here

    def _package(self, name: str | None) -> Any:
        return None

    def classify(self, handle: SecHandle | None, kind: HandleKind) -> HandleClass:
        if handle is None:
            return HandleClass.NULL
        live = self._contexts if kind is HandleKind.CONTEXT else self._credentials
        return HandleClass.LIVE if handle in live else HandleClass.NEVER_ISSUED

    # The synchronous calls, passed through so one object serves a whole scenario.

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # the adapter's own state: never the backend's
            raise AttributeError(name)
        return getattr(self.backend, name)

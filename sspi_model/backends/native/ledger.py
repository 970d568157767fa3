"""Which handles a worker's library issued, and whether a call passed it one it may not survive.

A worker serves example after example while the library's state stays defined (CMP-001): every
handle the library was given is one it issued, is still live and is of the kind the call takes.
A call that passes anything else (a deleted or freed handle, a random or invalidated value, a
credential as a context, a context whose credential was freed, a buffer the worker already
freed) is undefined behaviour in a library that does not check handles (sspi-rs: a double
free, a use after free; research/sspi-rs-probe.md §1.3-§1.4). Its outcome may have corrupted
the heap without a crash, so the worker is retired at the next reset instead of serving
another example.

NULL and a handle whose dwLower is 0 are not undefined: a library either checks for them (all
those probed do) or dereferences address 0, which faults at once (a CRASH, and a CRASH always
replaces the worker). Handles are keyed by dwLower, as the library keys them; for a context
every dwUpper the library wrote for it is accepted (sspi-rs writes a new one on each ASC leg).
"""

from __future__ import annotations

Handle = tuple[int, int] | None


class HandleLedger:
    """The live handles of one worker, and the first reason its state may be corrupt."""

    def __init__(self) -> None:
        self.credentials: set[tuple[int, int]] = set()
        self.contexts: dict[int, set[int]] = {}  # dwLower -> every dwUpper written for it
        self.made_with: dict[int, int] = {}  # context dwLower -> its credential's dwLower
        self.suspect = ""  # why the worker may be corrupt; "" while its state is defined

    def _flag(self, why: str) -> None:
        if not self.suspect:
            self.suspect = why

    def _credential_live(self, lower: int) -> bool:
        return any(live == lower for live, _ in self.credentials)

    def pass_credential(self, handle: Handle, call: str) -> None:
        if handle is None or handle[0] == 0:
            return
        if handle not in self.credentials:  # CMP-001: freed, never issued or a context
            self._flag(f"{call} was passed a credential handle the library did not issue or "
                       f"already freed: {handle[0]:#x}:{handle[1]:#x}")

    def pass_context(self, handle: Handle, call: str) -> None:
        if handle is None or handle[0] == 0:
            return
        lower, upper = handle
        if upper not in self.contexts.get(lower, ()):  # CMP-001: deleted, forged or a credential
            self._flag(f"{call} was passed a context handle the library did not issue or "
                       f"already deleted: {lower:#x}:{upper:#x}")
        elif lower in self.made_with and not self._credential_live(self.made_with[lower]):
            # CMP-001: sspi-rs contexts point into their credential (probe §1.4, item 6).
            self._flag(f"{call} was passed a context whose credential was freed: {lower:#x}")

    def pass_buffer(self, address: int | None) -> None:
        if address is not None:  # CMP-001: the worker frees every allocation it reports
            self._flag(f"FreeContextBuffer was passed {address:#x}, which is already freed")

    def issued_credential(self, handle: Handle) -> None:
        if handle is not None:
            self.credentials.add(handle)

    def issued_context(self, handle: Handle, credential: Handle) -> None:
        if handle is None or handle[0] == 0:
            return
        lower, upper = handle
        self.contexts.setdefault(lower, set()).add(upper)
        if credential is not None and credential[0] != 0 and lower not in self.made_with:
            self.made_with[lower] = credential[0]

    def freed_credential(self, handle: Handle) -> None:
        if handle is not None:
            self.credentials.discard(handle)

    def deleted_context(self, handle: Handle) -> None:
        if handle is not None:
            self.contexts.pop(handle[0], None)
            self.made_with.pop(handle[0], None)

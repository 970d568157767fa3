"""Deterministic instruction counts per operation, under callgrind, for any checkout's model.

    python benchmarks/instructions.py                       # this tree, every workload
    python benchmarks/instructions.py --root /tmp/oldcore   # another checkout (same API names)
    python benchmarks/instructions.py --only async_delete --count 2000

Each workload is run twice under `valgrind --tool=callgrind`: once with its set-up and its
measured loop, once with the set-up alone; the difference divided by the count is the cost of
one operation. Wall clocks on the shared machine are noisy; these counts are not (the hash seed
is fixed, and the cyclic GC is off in the measured loop: see _quiet_collector). The workloads
are those of benchmarks/run.py's rows:
  async_delete   create_async_context, set_async_notify_callback, delete_security_context_async,
                 ManualScheduler.run_all (completion + callback), get_async_call_status,
                 free_async_context (async_delete_cost_ratio's A side)
  live_delete    DeleteSecurityContext of a live context (its B side)
  stale_delete   DeleteSecurityContext of a deleted handle (stale_delete_overhead)
  handshake      one NTLM handshake and teardown on two instances (handshake_speedup_vs_sspi_rs)
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = ("async_delete", "live_delete", "stale_delete", "handshake")


def _workload(name: str, count: int, measure: bool) -> None:
    """Run inside the valgrind child: set up `count` operations, then run them if `measure`."""
    from workloads import ACCOUNTS, IDENTITY, OUTBOUND, REQ, TARGET, model_handshake, model_pair

    import sspi_model
    from sspi_model.scheduling import ManualScheduler
    from sspi_model.sspi import Sspi

    root = Path(os.environ["SSPI_MODEL_ROOT"])
    assert Path(sspi_model.__file__).resolve().is_relative_to(root), sspi_model.__file__

    if name == "handshake":
        client, server = model_pair()
        model_handshake(client, server)  # warm: lazy set-up paid in both runs
        _quiet_collector()
        if measure:
            for _ in range(count):
                model_handshake(client, server)
        return
    scheduler = ManualScheduler()
    sspi = Sspi(accounts=ACCOUNTS, scheduler=scheduler)
    credential = sspi.acquire_credentials_handle("NTLM", OUTBOUND, IDENTITY).credential
    isc = sspi.initialize_security_context
    handles = [isc(credential, None, TARGET, REQ).new_context for _ in range(count + 1)]
    notified: list[Any] = []

    def callback(async_context: Any, data: Any) -> None:
        notified.append(data)

    def lifecycle(handle: Any) -> None:
        context = sspi.create_async_context()
        sspi.set_async_notify_callback(context, callback, None)
        sspi.delete_security_context_async(context, context=handle)
        scheduler.run_all()
        sspi.get_async_call_status(context)
        sspi.free_async_context(context)

    delete = sspi.delete_security_context
    warm = handles.pop()
    if name == "async_delete":
        lifecycle(warm)  # the first call of each kind pays one-off costs in both runs
    else:
        delete(warm)
        delete(warm)
    if name == "stale_delete":
        for handle in handles:
            delete(handle)
    _quiet_collector()
    if not measure:
        return
    if name == "async_delete":
        for handle in handles:
            lifecycle(handle)
        assert len(notified) == count + 1
    else:
        for handle in handles:
            delete(handle)
    assert sspi.statistics().contexts == 0


def _quiet_collector() -> None:
    """No cyclic-GC pass inside the measured loop: where one falls depends on every allocation
    before it, so a change anywhere moved the totals by a few percent. The measured paths
    leave no cycles behind (reference counting frees them), so this drops noise, not work."""
    gc.collect()
    gc.disable()


def _instructions(root: Path, name: str, count: int, measure: bool) -> int:
    environment = dict(os.environ, PYTHONHASHSEED="0")
    environment["PYTHONPATH"] = os.pathsep.join([str(root), str(HERE)])
    environment["SSPI_MODEL_ROOT"] = str(root)
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        name,
        "--count",
        str(count),
    ]
    if measure:
        command.append("--measure")
    with tempfile.TemporaryDirectory() as scratch:  # run outside any checkout's directory
        done = subprocess.run(
            command, cwd=scratch, env=environment, capture_output=True, text=True, check=True
        )
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total in:\n{done.stderr}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=HERE.parent, help="the checkout to measure")
    parser.add_argument("--only", action="append", choices=WORKLOADS)
    parser.add_argument("--count", type=int, default=0, help="operations (default per workload)")
    parser.add_argument("--child", choices=WORKLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _workload(options.child, options.count, options.measure)
        return
    defaults = {"async_delete": 2000, "live_delete": 4000, "stale_delete": 4000, "handshake": 200}
    root = options.root.resolve()
    print(f"{root}:")
    for name in options.only or WORKLOADS:
        count = options.count or defaults[name]
        total = _instructions(root, name, count, True)
        setup = _instructions(root, name, count, False)
        print(f"  {name:13} {(total - setup) / count:10,.0f} instructions per operation "
              f"(n={count})", flush=True)


if __name__ == "__main__":
    main()

"""Where a run's CPU goes: CPU per run of each thread of the runtime.

Runs 3-step workflows (one at a time, or ``--window`` in flight) and reads
each thread's user and system time from ``/proc/self/task`` before and after
(Linux only). Pooled threads are grouped under ``pool``: a step attempt or a
run supervisor borrows any of them.

    python benchmarks/thread_cpu.py [--runs 2000] [--window 1] [--synchronous NORMAL|FULL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import Runtime, step, workflow

TICKS = os.sysconf("SC_CLK_TCK")


@step(name="cpu.noop")
def noop(i: int) -> int:
    return i


@workflow(name="cpu.three_steps")
async def three_steps(i: int) -> int:
    return await noop(i) + await noop(i + 1) + await noop(i + 2)


def thread_times() -> dict[int, tuple[float, float]]:
    """Thread id -> (user, system) seconds, for every thread of this process."""
    times = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except FileNotFoundError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        times[int(tid)] = (int(fields[11]) / TICKS, int(fields[12]) / TICKS)
    return times


def role(thread: threading.Thread | None) -> str:
    if thread is None:
        return "ended threads"
    name = thread.name.split(" ")[0]
    return "pool" if name.startswith("proctor-") else name.rsplit("-", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--window", type=int, default=1, help="runs in flight at once")
    parser.add_argument(
        "--synchronous",
        choices=("FULL", "NORMAL"),
        default="NORMAL",
        help="FULL: an fsync per commit (the peers' durability); NORMAL: none",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Runtime(Path(tmp) / "cpu.db", resume=False, synchronous=args.synchronous) as rt,
    ):
        rt.start(three_steps, 0).result(timeout=10)  # warm up: imports, first threads
        before, begin = thread_times(), time.perf_counter()
        pending = []
        for i in range(args.runs):
            pending.append(rt.start(three_steps, i))
            if len(pending) >= args.window:
                pending.pop(0).result(timeout=60)
        for handle in pending:
            handle.result(timeout=60)
        elapsed = time.perf_counter() - begin
        after = thread_times()
        by_id = {t.native_id: t for t in threading.enumerate()}
    per_role: dict[str, list[float]] = {}
    for tid, (user, system) in after.items():
        user0, system0 = before.get(tid, (0.0, 0.0))
        sums = per_role.setdefault(role(by_id.get(tid)), [0.0, 0.0])
        sums[0] += user - user0
        sums[1] += system - system0
    print(
        f"{args.runs / elapsed:.0f} runs/s, {args.window} in flight,"
        f" synchronous={args.synchronous}; CPU per run:"
    )
    total = [0.0, 0.0]
    for name, (user, system) in sorted(per_role.items(), key=lambda kv: -sum(kv[1])):
        total[0] += user
        total[1] += system
        ms = 1000 / args.runs
        print(f"  {name:<14} {ms * (user + system):6.3f} ms  (user {ms * user:.3f})")
    ms = 1000 / args.runs
    print(f"  {'all':<14} {ms * sum(total):6.3f} ms  (user {ms * total[0]:.3f})")


if __name__ == "__main__":
    main()

"""The machine a benchmark ran on, printed beside its numbers.

CPU count and model (``/proc/cpuinfo``), memory, the disk under the temp
folder (where every benchmark store lives), kernel and Python, and the
load average before and after (a shared machine's load moves the numbers).
Linux only; elsewhere the fields say "unknown".
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def _disk() -> str:
    """The device and file system of the temp folder, and whether it rotates."""
    folder = tempfile.gettempdir()
    try:
        done = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--target", folder],
            capture_output=True,
            text=True,
            check=True,
        )
        source, fstype = done.stdout.split()[:2]
    except (OSError, subprocess.CalledProcessError, ValueError):
        return "unknown"
    name = Path(source).name
    rotational = Path(f"/sys/block/{name}/queue/rotational")
    kind = ""
    if rotational.exists():
        kind = ", virtio" if name.startswith("vd") else ""
        kind += ", rotational flag " + rotational.read_text().strip()
    return f"{source} ({fstype}{kind}) under {folder}"


def describe() -> dict[str, str]:
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": _cpu_model(),
        "memory": _memory_gib(),
        "disk": _disk(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def summary(facts: dict[str, str]) -> str:
    return (
        f"machine: {facts['cpus']} CPUs ({facts['cpu_model']}), {facts['memory']},"
        f" disk {facts['disk']}, Linux {facts['kernel']}, Python {facts['python']}"
    )


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def print_settings_and_record(
    settings: Mapping[str, Iterable[str]], record: object, json_path: Path | None
) -> None:
    """The footer every comparison prints: each system's durability as read
    back after its runs, the load, and where the JSON record went."""
    print("\nDurability each system ran with (read from its store or server after each run):")
    for label, found in settings.items():
        for setting in sorted(found) or ["not reported (no run succeeded)"]:
            print(f"  {label}: {setting}")
    print(f"load after: {load()}")
    if json_path is not None:
        json_path.write_text(json.dumps(record, indent=1))
        print(f"recorded in {json_path}")

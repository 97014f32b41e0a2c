"""Embedding in a synchronous service: one Runtime for the process."""

import tempfile
from pathlib import Path

from actors import Runtime, step, workflow


@step()
def add(a: int, b: int) -> int:
    return a + b


@workflow()
async def total(items: list[int]) -> int:
    result = 0
    for item in items:
        result = await add(result, item)  # each step is recorded before the next
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "proctor.db")) as rt:
        run = rt.start(total, [1, 2, 3])
        print(run.result(timeout=10))  # 6


if __name__ == "__main__":
    main()

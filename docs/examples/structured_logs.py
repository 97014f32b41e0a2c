"""Structured logs in an embedding service: the runtime's fields on your own lines."""

import logging
import sys
import tempfile
import threading
from pathlib import Path

from actors import RetryPolicy, Runtime, step, workflow

ended = threading.Event()
outcome: list[str] = []  # the fields of the run's outcome line


class RunFields(logging.Formatter):
    """Appends the record's run fields (set with ``extra=``) as key=value pairs."""

    FIELDS = ("run_id", "step", "attempt", "event_type", "status", "duration_s")

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)}
        pairs = " ".join(f"{k}={v}" for k, v in fields.items())
        if fields.get("event_type") == "run_completed":
            outcome.append(pairs)
            ended.set()
        return f"{record.levelname} {record.getMessage()} | {pairs}"


attempts = []


@step(retry=RetryPolicy(initial_interval=0.01))
def charge(order: str) -> str:
    attempts.append(order)
    if len(attempts) == 1:
        raise ConnectionError("payment gateway timed out")
    return f"charged {order}"


@workflow()
async def checkout(order: str) -> str:
    return await charge(order)


def main() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RunFields())
    logging.getLogger("proctor").addHandler(handler)
    logging.getLogger("proctor").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp, Runtime(Path(tmp, "proctor.db")) as rt:
        run = rt.start(checkout, "o-1")
        print(run.result(timeout=10))  # charged o-1
        assert ended.wait(10)  # the outcome line follows the durable end
    print(outcome[0])  # run_id=5e0c... event_type=run_completed status=completed duration_s=0.0257
    # On stderr:
    # INFO run 5e0c...: step structured_logs.charge (call 0) attempt 1 failed
    #   (ConnectionError: payment gateway timed out); attempt 2 in 0.01s
    #   | run_id=5e0c... step=structured_logs.charge attempt=2 event_type=step_retry_scheduled
    # INFO run 5e0c... structured_logs.checkout completed in 0.03s
    #   | run_id=5e0c... event_type=run_completed status=completed duration_s=0.0257


if __name__ == "__main__":
    main()

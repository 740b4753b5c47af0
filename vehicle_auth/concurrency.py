"""Run blocking calls side by side under one deadline, without waiting for stragglers.

The Smartcar SDK hard-codes a 310 s timeout per HTTP call. A site user's request must not
wait that long, so calls run on daemon threads and the caller stops waiting when the
deadline passes: a late answer is dropped, and the thread ends when the SDK gives up.
Daemon threads (not a ThreadPoolExecutor) because an executor's workers are joined at
interpreter exit, which a hung call would hold up for minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


class DeadlineExceeded(Exception):
    """The deadline passed before every call had answered."""


class Deadline:
    """An absolute point in time shared by every call made while serving one request."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends_at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._ends_at - time.monotonic())


def run_concurrently(
    calls: Sequence[Callable[[], Any]], deadline: Deadline, max_parallel: int
) -> list[Any]:
    """Run `calls` with at most `max_parallel` in flight; results in order.

    The first exception a call raises is re-raised (after the others are told to stop
    starting new work). Raises DeadlineExceeded when the deadline passes first.
    """
    if not calls:
        return []
    results: list[Any] = [None] * len(calls)
    pending = list(range(len(calls)))
    pending.reverse()  # pop() from the end hands out calls in their original order
    lock = threading.Lock()
    finished = threading.Event()
    state: dict[str, Any] = {"done": 0, "error": None, "stop": False}

    def worker() -> None:
        while True:
            with lock:
                if state["stop"] or not pending:
                    return
                index = pending.pop()
            try:
                results[index] = calls[index]()
            except BaseException as exc:  # handed over to the waiting caller
                with lock:
                    if state["error"] is None:
                        state["error"] = exc
                    state["stop"] = True
                finished.set()
                return
            with lock:
                state["done"] += 1
                if state["done"] == len(calls):
                    finished.set()

    for _ in range(max(1, min(max_parallel, len(calls)))):
        threading.Thread(target=worker, daemon=True, name="vehicle_auth-call").start()

    if not finished.wait(deadline.remaining()):
        with lock:
            state["stop"] = True
        raise DeadlineExceeded(f"no answer within {deadline.seconds:g} s")
    if state["error"] is not None:
        raise state["error"]
    return results


def call_with_deadline(
    call: Callable[[], Any],
    deadline: Deadline,
    on_late: Callable[[Any, BaseException | None], None] | None = None,
) -> Any:
    """Run one blocking call, waiting at most until the deadline.

    When the deadline passes first, DeadlineExceeded is raised and the call goes on in the
    background; `on_late(result, error)` then runs on its thread once it ends. Exactly one
    of the two happens: the caller gets the answer, or `on_late` does.
    """
    guard = threading.Lock()
    finished = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = call()
        except BaseException as exc:  # handed over to the caller or to on_late
            error = exc
        with guard:
            late = box.get("abandoned", False)
            if not late:
                box["result"], box["error"] = result, error
        finished.set()
        if late and on_late is not None:
            on_late(result, error)

    threading.Thread(target=run, daemon=True, name="vehicle_auth-call").start()
    finished.wait(deadline.remaining())
    with guard:
        if "result" not in box:
            box["abandoned"] = True
            raise DeadlineExceeded(f"no answer within {deadline.seconds:g} s")
    if box["error"] is not None:
        raise box["error"]
    return box["result"]

"""Bounded fan-out. Prefect's default ThreadPoolTaskRunner has no useful worker limit,
and the limit we want (``CaseStudyConfig.max_concurrency``) is a run-time parameter, so
the flow cannot fix it in its decorator: submit through :func:`bounded_map` instead."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from prefect.futures import PrefectFuture, as_completed
from prefect.tasks import Task


def bounded_map(task: Task, items: Iterable[Any], limit: int, on_settled: Optional[Callable[[int], None]] = None,
                **kwargs: Any) -> list[Any]:
    """Run ``task(item, **kwargs)`` for each item with at most ``limit`` unfinished at once.

    ``on_settled(n)`` is called each time a run finishes, with the number finished so far.

    Returns the results in item order. A failed run (after its retries) stops further
    submissions and its exception is raised once the runs still in flight have finished.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    futures: list[PrefectFuture] = []
    running: set[PrefectFuture] = set()
    failed: PrefectFuture | None = None

    def settle_one() -> None:
        nonlocal failed
        done = next(as_completed(list(running)))
        running.discard(done)
        done.wait()  # records the final state locally; .state alone may ask the API, which can lag
        if failed is None and done.state.is_failed():
            failed = done
        if on_settled is not None:
            on_settled(len(futures) - len(running))

    for item in items:
        while len(running) >= limit:
            settle_one()
        if failed is not None:
            break
        future = task.submit(item, **kwargs)
        futures.append(future)
        running.add(future)
    while running:
        settle_one()
    if failed is not None:
        failed.result()  # raises the task's exception
    return [f.result() for f in futures]

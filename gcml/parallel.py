"""The one process pool of gcml's parallel stages (``simulate-maps``, ``simulate-clusters``, ``mock-observe``).

Why not ``concurrent.futures.ProcessPoolExecutor`` as it comes: an interrupt (Ctrl-C, or SIGTERM, which the
``gcml`` command turns into one) is raised wherever the main thread happens to be, and while a pool runs
that is often inside the executor's own bookkeeping. Measured with ``simulate-maps --n-galaxies 200000
--workers 2`` sent SIGTERM 0-120 ms after it started writing (80 trials each):

- raised inside ``Executor.map`` while it was still submitting, the uncancelled queue ran to the end first
  (no exit within 40 s);
- raised in an at-fork or weakref callback, it was printed as "Exception ignored" and lost: the command
  ran on (3 of 25);
- raised just after a lock of the executor was taken, the lock was never released and the command hung at
  exit, waiting for the executor's thread (1 of 80).

So while a pool is open the main thread holds SIGINT and SIGTERM: their handlers only record the signal,
and :class:`Pool` raises ``KeyboardInterrupt`` itself between its own steps (it waits for results in
0.1 s slices). On any exception the pending tasks are cancelled and the workers are stopped (SIGTERM, a
second SIGTERM, then SIGKILL), then joined, so the stage's clean-up runs after they are gone. Workers also
die with their parent (Linux ``PR_SET_PDEATHSIG``): a ``kill -9`` of the command does not leave them
computing for nobody.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures import TimeoutError as ResultTimeout
from typing import Any

_INTERRUPTS = (signal.SIGINT, signal.SIGTERM)
#: how long the main thread waits for a result before it looks for a held interrupt [s]
_SLICE = 0.1

_IN_TASK = False
_END = object()


def _worker_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
    # A first SIGTERM/SIGINT unwinds the running task (its temporary files are removed) and a second one kills;
    # an idle worker leaves quietly (no traceback from inside the executor's queue).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _IN_TASK:
        raise KeyboardInterrupt
    os._exit(128 + signum)


def _task(fn: Callable[..., Any], *args: Any) -> Any:
    global _IN_TASK
    _IN_TASK = True
    try:
        return fn(*args)
    finally:
        _IN_TASK = False


def _worker_init(parent: int) -> None:
    """Runs first in each worker: die with the parent (Linux), never outlive a parent already gone, and stop
    on SIGTERM/SIGINT as :func:`_worker_signal` says."""
    for sig in _INTERRUPTS:
        signal.signal(sig, _worker_signal)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


@contextlib.contextmanager
def _held_interrupts() -> Iterator[list[int]]:
    """While open, SIGINT/SIGTERM handled by Python are recorded in the yielded list instead of raised.

    Signals left at the system's default or ignored stay so; outside the main thread nothing changes.
    """
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    old = {s: signal.getsignal(s) for s in _INTERRUPTS}
    mine = [s for s, h in old.items() if callable(h)]
    for s in mine:
        signal.signal(s, lambda signum, frame: got.append(signum))  # noqa: ARG005
    try:
        yield got
    finally:
        for s in mine:
            signal.signal(s, old[s])


class Pool:
    """What :func:`process_pool` yields: ``submit``, ``map`` (ordered) and ``as_completed``, as on an executor,
    but interruptible only between their own steps (see the module's docstring)."""

    def __init__(self, executor: ProcessPoolExecutor, held: list[int], workers: int) -> None:
        self.executor, self._held, self._depth = executor, held, 2 * workers + 2

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` when SIGINT or SIGTERM came while the pool was open."""
        if self._held:
            raise KeyboardInterrupt

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        self.check()
        return self.executor.submit(_task, fn, *args)

    def result(self, fut: Future) -> Any:
        """``fut.result()``, looking for a held interrupt every 0.1 s."""
        while True:
            self.check()
            with contextlib.suppress(ResultTimeout):
                return fut.result(timeout=_SLICE)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """``fn(item)`` for each item, in order; a few tasks per worker in flight (not all of them at once)."""
        items = iter(items)
        window = collections.deque(self.submit(fn, it) for it in itertools.islice(items, self._depth))
        while window:
            res = self.result(window.popleft())
            nxt = next(items, _END)
            if nxt is not _END:
                window.append(self.submit(fn, nxt))
            yield res

    def as_completed(self, futures: Iterable[Future]) -> Iterator[Future]:
        """The futures as they finish, looking for a held interrupt every 0.1 s."""
        pending = set(futures)
        while pending:
            self.check()
            done, pending = wait(pending, timeout=_SLICE, return_when=FIRST_COMPLETED)
            yield from done


@contextlib.contextmanager
def process_pool(workers: int, mp_context: Any = None) -> Iterator[Pool]:
    """A pool of ``workers`` processes that stops at once on an exception or an interrupt in the ``with`` block.

    On normal exit it waits for the submitted work. On any exception (including ``KeyboardInterrupt``) pending
    tasks are cancelled, the workers are sent SIGTERM (a busy worker unwinds its task, removing its temporary
    files; a second SIGTERM, then SIGKILL, follow if it lingers) and joined, and the exception propagates. An
    interrupt that came while the pool was open and was not yet raised is raised on leaving the block.
    """
    with _held_interrupts() as held:
        before = set(multiprocessing.active_children())
        ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp_context, initializer=_worker_init,
                                 initargs=(os.getpid(),))
        try:
            yield Pool(ex, held, workers)
        except BaseException:
            _stop(ex, before)
            raise
        ex.shutdown(wait=True)
    if held:
        raise KeyboardInterrupt


def _stop(ex: ProcessPoolExecutor, before: set) -> None:
    # The executor's own shutdown(wait=True) would run every queued task first. A worker started just as the
    # interrupt came may not be in the executor's table yet: multiprocessing's list of children has it.
    procs = {*(getattr(ex, "_processes", None) or {}).values(), *(set(multiprocessing.active_children()) - before)}
    results = getattr(ex, "_result_queue", None)  # shutdown() forgets it
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=0.5)
            if p.is_alive():  # a task that unwound returns to the queue: the second signal kills
                p.terminate()
                p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    # A worker stopped while it was writing its result leaves half a message in the result pipe, and the
    # executor's thread waits for the rest for ever (seen: the command hung at exit, in _python_exit). The
    # workers are gone; closing this process's own write end ends that read with EOF.
    with contextlib.suppress(Exception):
        results._writer.close()

"""A supervised pool of worker processes: a task that overruns its deadline costs one worker.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one task. A document that sends the
HTML extractor into minutes of work holds its worker, and the request waiting on it, for those
minutes; the only remedy there is to tear the whole pool down with every other request in it.
Here each worker is a process of its own, driven over a pipe by one thread of the parent:

    run / run_each / submit ─► queue ─► slot thread k ══ pipe ══► worker process k
                                          │ waits for each answer until the deadline;
                                          │ past it: SIGKILL that worker, fail that task
                                          │ with TaskTimeout, start and warm a fresh worker
                                          ▼
                          concurrent.futures.Future ─► asyncio.wrap_future (any event loop)

The slot threads block on pipes, never an event loop, and the futures are thread-safe, so one
pool can serve several event loops (the tests share one across apps). The deadline runs from
the moment a worker takes the task, so time spent queued behind other tasks never counts; an
import a task triggers does count, so the initializer should import what the tasks use.
:class:`WorkerPool` is an :class:`~concurrent.futures.Executor`, so code that only needs
``submit`` or ``loop.run_in_executor`` can use it as one (those calls have no deadline).

A worker holds one task at a time. ProcessPoolExecutor queues the next call in a worker ahead
of time; here that call could wait behind a document that hangs until its deadline while
another worker sits idle, so a worker gets its next task only once it has answered. The price
is one turn of its slot thread between tasks: ~0.2 ms, ~0.4 ms on average when the event loop
is busy and the thread waits for the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from .errors import TaskTimeout, WorkerCrashed, WorkerError

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

# A worker starts a Python interpreter, imports the cleaning stack and runs the initializer
# (seconds on a busy machine); past this it counts as failed to start.
START_TIMEOUT_S = 120.0
# How long close() lets running tasks finish, and an idle worker exit, before killing it.
CLOSE_GRACE_S = 5.0
# Waits between attempts to start a worker that failed to start (the last one repeats).
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
# How often a worker checks that the process that started it is still alive.
PARENT_CHECK_S = 1.0


@dataclass(eq=False)
class _Call:
    """One call ``fn(*args, **kwargs)``: ``run`` and ``submit``."""

    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    timeout_s: float | None
    context: contextvars.Context
    urgent: bool = False


@dataclass(eq=False)
class _Each:
    """``fn(item, *args)`` for each item, each with its own deadline: ``run_each``.

    When an item fails its worker, the items after it are queued again (at the front) from
    ``start``; only one part of a job is ever queued or running, so ``results`` needs no lock.
    """

    future: Future[list[Any]]
    fn: Callable[..., Any]
    items: list[Any]
    args: tuple[Any, ...]
    timeout_s: float | None
    context: contextvars.Context
    results: list[Any] = field(default_factory=list)
    start: int = 0
    urgent: bool = False


_Unit = _Call | _Each


class _Slot:
    """One worker process and its pipe; only the slot's own thread changes it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None
        self.pid: int | None = None
        self.thread: threading.Thread | None = None
        # The worker stopped last, and when: what a replacement reports.
        self.last_pid: int | None = None
        self.lost_at = 0.0
        # Resolved when the first worker of the slot is ready (or failed to start). Marked
        # running at once so that a cancelled waiter cannot cancel it.
        self.ready: Future[int] = Future()
        self.ready.set_running_or_notify_cancel()


class WorkerPool(Executor):
    """``size`` worker processes (spawned, each warmed by ``initializer(*initargs)``).

    ``await run(fn, *args, timeout_s=...)`` runs one call; ``await run_each(fn, items, *args,
    timeout_s=...)`` runs ``fn(item, *args)`` per item with a deadline per item and gives each
    item's result or exception. A task past its deadline raises :class:`TaskTimeout` and its
    worker is killed and replaced; a worker that dies mid-task raises :class:`WorkerCrashed`
    and is replaced too. Functions, arguments and results cross a pipe, so they must pickle
    (functions by reference: module-level, importable by the worker).
    """

    def __init__(
        self,
        size: int,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker; got size={size}")
        self._size = size
        self._initializer = initializer
        self._initargs = initargs
        self._start_timeout_s = start_timeout_s
        # spawn, not fork: forking a process that runs an event loop and Redis connections
        # copies their state into the children.
        self._mp = multiprocessing.get_context("spawn")
        self._cond = threading.Condition()
        self._spawn_lock = threading.Lock()
        self._queue: deque[_Unit] = deque()
        # Taken before anything in _queue: a request for one article should not wait behind
        # the queued parts of a large batch (see run's ``urgent``).
        self._urgent: deque[_Unit] = deque()
        self._slots = [_Slot(i) for i in range(size)]
        self._launched = False
        self._closing = False
        self._pending = 0
        self._replacements = 0

    # --- what callers see --------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Worker processes the pool keeps (some may be restarting)."""
        return self._size

    @property
    def pending(self) -> int:
        """Tasks submitted and not finished yet (queued or running)."""
        return self._pending

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers that are up now."""
        return [pid for slot in self._slots if (pid := slot.pid) is not None]

    @property
    def replacements(self) -> int:
        """Workers killed or lost and started again since the pool started."""
        return self._replacements

    async def start(self) -> None:
        """Start every worker and wait until each has run the initializer. Idempotent.

        If a worker fails to start, the pool is closed and the error raised.
        """
        self._launch()
        try:
            await asyncio.gather(*(asyncio.wrap_future(slot.ready) for slot in self._slots))
        except BaseException:
            await self.close()
            raise

    async def run(
        self, fn: Callable[..., T], *args: Any, timeout_s: float | None, urgent: bool = False
    ) -> T:
        """``fn(*args)`` in a worker; past ``timeout_s`` raises TaskTimeout (None: no deadline).

        An ``urgent`` task is taken by the next free worker before any other queued task.
        """
        future: Future[T] = Future()
        call = _Call(future, fn, args, {}, timeout_s, contextvars.copy_context(), urgent)
        self._enqueue(call)
        return await asyncio.wrap_future(future)

    async def run_each(
        self,
        fn: Callable[..., T],
        items: Sequence[Any],
        *args: Any,
        timeout_s: float | None,
        urgent: bool = False,
    ) -> list[T | Exception]:
        """``fn(item, *args)`` for each item in order, in one worker, each with its own deadline.

        Answers one entry per item: its result, or the exception it raised, or TaskTimeout /
        WorkerCrashed when it overran or killed its worker (the items after it then continue
        on another worker).
        """
        if not items:
            return []
        future: Future[list[Any]] = Future()
        unit = _Each(future, fn, list(items), args, timeout_s, contextvars.copy_context())
        unit.results = [None] * len(unit.items)
        unit.urgent = urgent
        self._enqueue(unit)
        return await asyncio.wrap_future(future)

    async def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Cancel queued tasks, give running ones ``grace_s``, then stop every worker."""
        await asyncio.to_thread(self._stop, cancel_futures=True, grace_s=grace_s)

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- the Executor interface (no deadlines) ----------------------------------------------

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        self._enqueue(_Call(future, fn, args, kwargs, None, contextvars.copy_context()))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if wait:
            self._stop(cancel_futures=cancel_futures, grace_s=None)
            return
        self._signal_stop(cancel_futures=cancel_futures)

    def __enter__(self) -> WorkerPool:
        """Start the workers and wait until they are ready (for synchronous callers)."""
        self._launch()
        try:
            for slot in self._slots:
                slot.ready.result()
        except BaseException:
            self._stop(cancel_futures=True, grace_s=CLOSE_GRACE_S)
            raise
        return self

    # --- queue and lifecycle -----------------------------------------------------------------

    def _launch(self) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("the worker pool is closed")
            if self._launched:
                return
            self._launched = True
        for slot in self._slots:
            slot.thread = threading.Thread(
                target=self._serve, args=(slot,), name=f"worker-pool-slot-{slot.index}", daemon=True
            )
            slot.thread.start()

    def _enqueue(self, unit: _Unit) -> None:
        self._launch()
        with self._cond:
            if self._closing:
                raise RuntimeError("cannot schedule new tasks after the worker pool is closed")
            self._pending += 1
            (self._urgent if unit.urgent else self._queue).append(unit)
            self._cond.notify()
        unit.future.add_done_callback(self._task_done)

    def _task_done(self, _future: Future[Any]) -> None:
        with self._cond:
            self._pending -= 1

    def _take(self) -> _Unit | None:
        with self._cond:
            while not self._urgent and not self._queue and not self._closing:
                self._cond.wait()
            for queue in (self._urgent, self._queue):
                if queue:
                    return queue.popleft()
            return None

    def _requeue(self, unit: _Each) -> bool:
        """Put the rest of a job back at the front of the queue; False once closing."""
        with self._cond:
            if self._closing:
                return False
            (self._urgent if unit.urgent else self._queue).appendleft(unit)
            self._cond.notify()
            return True

    def _signal_stop(self, *, cancel_futures: bool) -> list[_Unit]:
        with self._cond:
            self._closing = True
            dropped = [*self._urgent, *self._queue] if cancel_futures else []
            if cancel_futures:
                self._urgent.clear()
                self._queue.clear()
            self._cond.notify_all()
        for unit in dropped:
            _abandon(unit)
        return dropped

    def _stop(self, *, cancel_futures: bool, grace_s: float | None) -> None:
        self._signal_stop(cancel_futures=cancel_futures)
        threads = [(slot, slot.thread) for slot in self._slots if slot.thread is not None]
        end = None if grace_s is None else time.monotonic() + grace_s
        for _slot, thread in threads:
            thread.join(None if end is None else max(0.0, end - time.monotonic()))
        # Past the grace: kill what still runs; its slot thread then sees the pipe close.
        while any(thread.is_alive() for _slot, thread in threads):
            for slot, thread in threads:
                process = slot.process
                if thread.is_alive() and process is not None:
                    process.kill()
                thread.join(0.1)
        with self._cond:
            left = [*self._urgent, *self._queue]
            self._urgent.clear()
            self._queue.clear()
        for unit in left:
            _abandon(unit)

    # --- one slot: its thread, its worker ----------------------------------------------------

    def _serve(self, slot: _Slot) -> None:
        self._keep_worker(slot)
        while (unit := self._take()) is not None:
            # A copy per run: the rest of a run_each job may start in another slot while
            # this one still replaces its worker inside the job's context.
            context = unit.context.copy()
            context.run(self._execute, slot, unit)
            if slot.process is None:
                context.run(self._keep_worker, slot)
        self._stop_worker(slot)

    def _keep_worker(self, slot: _Slot) -> None:
        """Start the slot's worker, retrying with a backoff; gives up only when closing."""
        for attempt in itertools.count():
            if self._closing:
                if not slot.ready.done():
                    slot.ready.set_exception(WorkerError("the worker pool closed while starting"))
                return
            try:
                pid = self._start_worker(slot)
            except Exception as exc:
                if not slot.ready.done():
                    slot.ready.set_exception(exc)
                if self._closing:
                    return  # killed by close() while starting: nothing to report
                wait_s = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
                log.error(
                    "worker failed to start; retrying",
                    exc_info=True,
                    extra={"slot": slot.index, "retry_in_s": wait_s},
                )
                with self._cond:
                    self._cond.wait_for(lambda: self._closing, timeout=wait_s)
                continue
            if not slot.ready.done():
                slot.ready.set_result(pid)
                log.debug("worker ready", extra={"slot": slot.index, "pid": pid})
            else:
                with self._cond:
                    self._replacements += 1
                log.info(
                    "worker replaced",
                    extra={
                        "slot": slot.index,
                        "old_pid": slot.last_pid,
                        "pid": pid,
                        "replace_s": round(time.monotonic() - slot.lost_at, 3),
                    },
                )
            return

    def _start_worker(self, slot: _Slot) -> int:
        parent_conn, child_conn = self._mp.Pipe(duplex=True)
        process = self._mp.Process(
            target=_worker_main,
            args=(child_conn, self._initializer, self._initargs),
            name=f"news-ingest-worker-{slot.index}",
            daemon=True,
        )
        with self._spawn_lock:
            process.start()
        child_conn.close()
        slot.process, slot.conn, slot.pid = process, parent_conn, None
        try:
            if not parent_conn.poll(self._start_timeout_s):
                raise WorkerError(
                    f"the worker did not start within {self._start_timeout_s:g} s "
                    "(importing the cleaning stack and warming it up)"
                )
            kind, value = parent_conn.recv()
        except (EOFError, OSError) as exc:
            self._stop_worker(slot, kill=True)
            raise WorkerError(
                f"the worker exited while starting (exit code {process.exitcode})"
            ) from exc
        except BaseException:
            self._stop_worker(slot, kill=True)
            raise
        if kind != "ready":
            self._stop_worker(slot, kill=True)
            cause = value if isinstance(value, BaseException) else None
            raise WorkerError(f"the worker's initializer failed: {value!r}") from cause
        slot.pid = value
        return int(value)

    def _stop_worker(self, slot: _Slot, *, kill: bool = False) -> int | None:
        """Stop the slot's worker (asking first unless ``kill``), reap it, return its exit code."""
        process, conn = slot.process, slot.conn
        if process is None or conn is None:
            return None
        if not kill and process.is_alive():
            with contextlib.suppress(OSError):  # already gone: reaped below
                conn.send(None)
            process.join(CLOSE_GRACE_S)
        if process.is_alive():
            process.kill()
        process.join()
        conn.close()
        slot.last_pid, slot.lost_at = slot.pid, time.monotonic()
        slot.process = slot.conn = slot.pid = None
        return process.exitcode

    # --- running work ------------------------------------------------------------------------

    def _execute(self, slot: _Slot, unit: _Unit) -> None:
        process = slot.process
        if process is not None and not process.is_alive():
            # Died while idle (the OOM killer, an operator): the task is not to blame.
            pid, exitcode = slot.pid, self._stop_worker(slot, kill=True)
            log.warning("worker died while idle", extra={"pid": pid, "exitcode": exitcode})
            self._keep_worker(slot)
        if isinstance(unit, _Call):
            self._execute_call(slot, unit)
        else:
            self._execute_each(slot, unit)

    def _execute_call(self, slot: _Slot, unit: _Call) -> None:
        if not unit.future.set_running_or_notify_cancel():
            return  # cancelled while queued
        try:
            self._send(slot, ("call", unit.fn, unit.args, unit.kwargs))
            kind, value = self._receive(slot, unit.timeout_s)
        except BaseException as exc:
            unit.future.set_exception(exc)
            return
        if kind == "ok":
            unit.future.set_result(value)
        else:
            unit.future.set_exception(value)

    def _execute_each(self, slot: _Slot, unit: _Each) -> None:
        if unit.start == 0 and not unit.future.set_running_or_notify_cancel():
            return
        try:
            self._send(slot, ("each", unit.fn, unit.items[unit.start :], unit.args))
        except BaseException as exc:
            _fail_rest(unit, exc)
            return
        for index in range(unit.start, len(unit.items)):
            try:
                kind, value = self._receive(slot, unit.timeout_s)
            except WorkerError as exc:
                # This item killed or hung its worker: it fails alone, the rest goes on.
                unit.results[index] = exc
                unit.start = index + 1
                if unit.start == len(unit.items):
                    unit.future.set_result(unit.results)
                elif not self._requeue(unit):
                    _fail_rest(unit, WorkerError("the worker pool closed before this item ran"))
                return
            if kind == "unreadable":
                _fail_rest(unit, value, start=index)
                return
            unit.results[index] = value
        unit.future.set_result(unit.results)

    def _send(self, slot: _Slot, message: tuple[Any, ...]) -> None:
        conn, process = slot.conn, slot.process
        if conn is None or process is None:
            raise WorkerError("the worker pool has no worker for this task")
        # Pickle first, so an argument that does not pickle fails its task, not the pipe.
        data = ForkingPickler.dumps(message)
        try:
            conn.send_bytes(data)
        except OSError as exc:
            pid = slot.pid
            raise WorkerCrashed(pid, self._stop_worker(slot, kill=True)) from exc

    def _receive(self, slot: _Slot, timeout_s: float | None) -> tuple[str, Any]:
        """The worker's next answer; past ``timeout_s`` the worker is killed (TaskTimeout)."""
        conn = slot.conn
        assert conn is not None  # _send checked
        pid = slot.pid
        if not conn.poll(timeout_s):
            log.info(
                "task past its deadline; killing its worker",
                extra={"pid": pid, "limit_s": timeout_s},
            )
            self._stop_worker(slot, kill=True)
            assert timeout_s is not None  # poll(None) waits until there is something to read
            raise TaskTimeout(timeout_s, pid)
        try:
            answer: tuple[str, Any] = conn.recv()
        except (EOFError, OSError) as exc:
            exitcode = self._stop_worker(slot, kill=True)
            if self._closing:
                raise WorkerError("the worker pool closed while this task ran") from exc
            log.error("worker died during a task", extra={"pid": pid, "exitcode": exitcode})
            raise WorkerCrashed(pid, exitcode) from exc
        except Exception as exc:
            # The answer was read whole but does not unpickle here: that task fails only.
            error = WorkerError(f"the worker's answer could not be read: {exc!r}")
            error.__cause__ = exc
            return "err", error
        return answer


def _abandon(unit: _Unit) -> None:
    """Settle a unit that will never run (the pool is closing)."""
    if unit.future.cancel():
        return
    if isinstance(unit, _Each):
        _fail_rest(unit, WorkerError("the worker pool closed before this item ran"))
    elif not unit.future.done():
        unit.future.set_exception(WorkerError("the worker pool closed before this task ran"))


def _fail_rest(unit: _Each, exc: BaseException, start: int | None = None) -> None:
    first = unit.start if start is None else start
    for index in range(first, len(unit.items)):
        unit.results[index] = exc
    unit.future.set_result(unit.results)


# --- the worker process ----------------------------------------------------------------------


def _worker_main(
    conn: Connection, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
) -> None:
    """A worker: run the initializer, then answer tasks until told to stop or orphaned."""
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the parent decides
    # when workers stop (after in-flight requests are answered), and a worker whose parent is
    # gone exits by itself (_watch_parent), so ignoring both cannot leave an orphan.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _watch_parent(os.getppid())
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:
        _answer(conn, "init_failed", exc)
        return
    freeze_heap()
    try:
        conn.send(("ready", os.getpid()))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                raise
            except Exception as exc:
                # Read whole but not unpicklable here (a function this process cannot import).
                _answer(conn, "unreadable", exc)
                continue
            if message is None:
                return
            kind, fn, *rest = message
            if kind == "call":
                args, kwargs = rest
                _answer_call(conn, fn, *args, **kwargs)
            else:
                items, args = rest
                for item in items:
                    _answer_call(conn, fn, item, *args)
    except (EOFError, OSError):
        return  # the parent is gone or stopped listening: nothing left to answer


def freeze_heap() -> None:
    """Exempt what exists now from the cyclic garbage collector: call once a process has
    started (imports, warm-up, the app), since those objects live as long as it does.

    Every full collection would walk them all otherwise: in a worker, after warming the
    cleaning stack (trafilatura, dateparser's locales), ~160k objects, 60 to 150 ms on the
    2-core machine once every thousand or so tasks, while a task waits; in the service
    process, up to ~50 ms of the event loop every few thousand requests.
    """
    gc.collect()
    gc.freeze()


def _answer_call(conn: Connection, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        value = fn(*args, **kwargs)
    except Exception as exc:
        _answer(conn, "err", exc)
    else:
        _answer(conn, "ok", value)


def _answer(conn: Connection, kind: str, value: Any) -> None:
    try:
        conn.send((kind, value))
    except (EOFError, OSError):
        raise
    except Exception as exc:
        # The value does not pickle: say so instead of leaving the parent waiting.
        conn.send(("err", WorkerError(f"the worker's answer could not be sent back: {exc!r}")))


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent dies, even mid-task: a hung worker must not outlive the service."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()

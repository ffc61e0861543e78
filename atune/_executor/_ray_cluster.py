"""The Ray that trials run on: starting it, keeping it alive, noticing when it dies.

**Lifetime.** ``ray.init()`` starts the head processes (``gcs_server``, ``raylet``) with
a parent-death signal, which Linux delivers when the *thread* that forked them exits,
not the process. So Ray is never started on an event loop's worker thread (those exit
with their loop, or when the pool retires them): every ``ray.init`` and
``ray.shutdown`` of atune runs on one daemon thread, :data:`_OWNER`, that lives as
long as the process. The event loop only awaits the result.

**Health.** :class:`ClusterWatch` notices within seconds when the cluster goes away
under a running experiment: head processes this process started that exited, or the
GCS server / the local raylet refusing connections. Ray itself would wait 60 s and
then end the whole process; the executor instead disconnects (``ray.shutdown()``) so
that ``fit()`` can raise a clear error and the program goes on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import ray

from atune.errors import AtuneError

__all__ = ["ClusterWatch", "ensure_ray", "on_owner_thread", "shutdown_ray"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between two health checks of the cluster.
CHECK_INTERVAL_S = 1.0
#: A cluster whose GCS server or local raylet refuses connections this long is dead.
UNREACHABLE_AFTER_S = float(os.environ.get("ATUNE_RAY_UNREACHABLE_TIMEOUT_S", "5"))
#: Time allowed to ``ray.shutdown()`` of a dead cluster (it kills what is left).
SHUTDOWN_TIMEOUT_S = 30.0


class _OwnerThread:
    """One daemon thread per process that runs ``ray.init`` and ``ray.shutdown``.

    It is started on first use and never exits before the process does, so the
    processes Ray starts from it live until the process exits (or ``ray.shutdown()``).
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the thread did not come along
                self._pid, self._thread, self._jobs = os.getpid(), None, queue.SimpleQueue()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="atune-ray-owner", daemon=True
                )
                self._thread.start()
        self._jobs.put((fn, future))
        return future

    def _serve(self) -> None:
        while True:
            fn, future = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)


_OWNER = _OwnerThread()


async def on_owner_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` on the Ray owner thread; the event loop stays free meanwhile."""
    return await asyncio.wrap_future(_OWNER.submit(fn))


def _drop_sigterm_warning(record: logging.LogRecord) -> bool:
    return "SIGTERM handler is not set" not in record.getMessage()


async def ensure_ray(address: str | None, init_kwargs: dict[str, Any]) -> bool:
    """Start (or connect to) Ray unless this process is connected; True if started here."""
    if ray.is_initialized():
        return False
    if os.environ.get("TUNE_DISABLE_AUTO_INIT") == "1":
        raise AtuneError(
            "Ray is not running and TUNE_DISABLE_AUTO_INIT=1: call ray.init() "
            "before fit(), or unset the variable"
        )
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "ignore_reinit_error": True,
        "logging_level": logging.WARNING,
        "configure_logging": False,
        **init_kwargs,
    }
    if address is not None:
        kwargs["address"] = address

    def _init() -> bool:
        if ray.is_initialized():  # another experiment started it meanwhile
            return False
        _probe(kwargs.get("address") or os.environ.get("RAY_ADDRESS"), init_kwargs)
        # Off the main thread Ray leaves the process's SIGTERM handling alone (what a
        # host application wants) and warns about it, which is noise here.
        ray_logger = logging.getLogger("ray._private.worker")
        ray_logger.addFilter(_drop_sigterm_warning)
        try:
            ray.init(**kwargs)
        except Exception as exc:
            raise _init_failed(address, init_kwargs, exc) from exc
        finally:
            ray_logger.removeFilter(_drop_sigterm_warning)
        return True

    return await on_owner_thread(_init)


#: How long a cluster address may take to accept a TCP connection before fit() gives up.
PROBE_TIMEOUT_S = 5.0


def _probe(address: str | None, init_kwargs: dict[str, Any]) -> None:
    """Fail at once for a ``host:port`` nothing listens on (Ray retries for minutes)."""
    match = re.fullmatch(r"([\w.\-]+):(\d+)", address or "")
    if match is None:
        return  # "auto", "local", "ray://...": left to Ray
    try:
        socket.create_connection((match[1], int(match[2])), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise _init_failed(address, init_kwargs, exc) from exc


def _init_failed(address: str | None, init_kwargs: dict[str, Any], exc: Exception) -> AtuneError:
    where = address or os.environ.get("RAY_ADDRESS")
    if where:
        return AtuneError(
            f"could not connect to the Ray cluster at {where!r} ({type(exc).__name__}: "
            f"{exc}). Is it running (`ray status --address {where}`)? Fix RAY_ADDRESS or "
            "the address given to RayExecutor, or unset both to start a local Ray."
        )
    return AtuneError(
        f"could not start a local Ray ({type(exc).__name__}: {exc}) with "
        f"ray.init({', '.join(f'{k}={v!r}' for k, v in init_kwargs.items())}). Fix those "
        "arguments, or start Ray yourself with ray.init(...) before fit()."
    )


async def shutdown_ray() -> None:
    """Disconnect from Ray (killing what this process started), on the owner thread."""
    with anyio.move_on_after(SHUTDOWN_TIMEOUT_S):
        await on_owner_thread(ray.shutdown)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class ClusterWatch:
    """Watches the Ray cluster this process is connected to.

    Two signs of death, checked every :data:`CHECK_INTERVAL_S`: a head process that
    this process started has exited (definite, seen at once), or the GCS server or the
    local raylet has refused connections for :data:`UNREACHABLE_AFTER_S` (a cluster
    started elsewhere, or a remote head node that is gone).
    """

    def __init__(self) -> None:
        node = getattr(ray._private.worker.global_worker, "node", None)
        self._processes: list[tuple[str, Any]] = []
        self._endpoints: list[tuple[str, str, int]] = []
        if node is None:  # Ray Client mode: the client library watches its connection
            return
        from ray._private import ray_constants

        for kind in (ray_constants.PROCESS_TYPE_GCS_SERVER, ray_constants.PROCESS_TYPE_RAYLET):
            for info in node.all_processes.get(kind, ()):
                if getattr(info, "process", None) is not None:
                    self._processes.append((kind, info.process))
        gcs_address = getattr(node, "gcs_address", None)
        if gcs_address:
            host, _, port = gcs_address.rpartition(":")
            self._endpoints.append(("the GCS server", host, int(port)))
        port = getattr(node, "node_manager_port", None)
        if port:
            self._endpoints.append(("the raylet of this node", node.node_ip_address, int(port)))

    def exited(self) -> str | None:
        """Why the cluster is dead, if a head process started here has exited."""
        for kind, process in self._processes:
            code = process.poll()
            if code is not None:
                return f"Ray's {kind} process (pid {process.pid}) {_describe_exit(code)}"
        return None

    async def _unreachable(self) -> str | None:
        for what, host, port in self._endpoints:
            try:
                with anyio.fail_after(2.0):
                    stream = await anyio.connect_tcp(host, port)
                await stream.aclose()
            except (OSError, TimeoutError):
                return f"{what} at {host}:{port} does not answer"
        return None

    async def wait_dead(self) -> str:
        """Return (a description of what happened) once the cluster is dead."""
        down_since: float | None = None
        while True:
            await anyio.sleep(CHECK_INTERVAL_S)
            reason = self.exited()
            if reason is not None:
                return reason
            reason = await self._unreachable()
            if reason is None:
                down_since = None
                continue
            now = time.monotonic()
            if down_since is None:
                down_since = now
            elif now - down_since >= UNREACHABLE_AFTER_S:
                return f"{reason} (for {now - down_since:.0f} s)"

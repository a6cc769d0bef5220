"""The built-in TCP connect sweep: bare non-blocking sockets on ``select.epoll``.

Why not asyncio: on loopback a sweep is CPU-bound, and asyncio streams cost about five times
more per connect than a bare socket loop (reference/lab.md section 7.1: 9-14k connects/s for
asyncio against about 40k for a plain epoll loop on one core, and nmap's 44k). So the inner
loop below is deliberately plain: create a non-blocking socket, ``connect_ex``, register it
for writability, read ``SO_ERROR`` when epoll reports it, close. Two shortcuts keep the
common case (a closed port) cheap: when the answer came back inside the ``connect`` call (as
on loopback) ``SO_ERROR`` already holds it and epoll is skipped; and such a failed socket is
reset by one more ``connect`` (``ECONNABORTED``, nothing sent) and reused for the next probe
instead of being closed. Together these roughly halve the CPU per probe.

Large sweeps run one such loop per core in worker processes, each on its own share of the
addresses; the parent streams their findings back and calls ``on_open`` in its own thread.
Every limit from :class:`~camaudit.config.SweepConfig` is global: concurrency and rate are
divided between the workers, and the addresses are partitioned, so ``per_host`` holds exactly.

Limits (defaults are gentle on fragile embedded devices, config.py):

* ``concurrency``: connects in flight at once, over the whole sweep;
* ``rate``: new connects per second (a token bucket with a few milliseconds of burst, so the
  count after ``t`` seconds never exceeds ``1 + rate * t`` plus that small burst); 0 = no cap;
* ``per_host``: connects in flight to one address at once;
* ``connect_timeout``: seconds before an unanswered connect counts as filtered.

Probes are interleaved across hosts (every address gets its first port before any gets its
second), so no single device is hammered. ``EHOSTUNREACH``/``ENETUNREACH`` (a failed ARP
lookup on a local segment, lab.md section 7.2) marks the address down and skips its other
ports.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import select
import signal
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import SweepConfig
from ..errors import CamauditError, ScanFailed
from .sweep import OnOpen, Progress, SweepResult, check_sweep_config, normalise_addresses

__all__ = ["SweepResult", "sweep"]

log = logging.getLogger(__name__)

#: Below this many probes per worker a second process costs more than it saves.
MIN_PROBES_PER_WORKER = 12_000
#: One core does roughly this many connects/s on loopback; a rate cap below it needs no workers.
ONE_CORE_RATE = 20_000.0
#: Token-bucket depth in seconds of rate: enough to cover epoll's millisecond timer granularity.
BURST_SECONDS = 0.002
#: How often the loop reports progress (and a worker flushes its findings to the parent).
TICK_SECONDS = 0.05
#: Longest the parent waits for workers to finish after a stop before killing them.
STOP_GRACE_SECONDS = 0.5

_SOCK_STREAM_NB = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
# A reset after the handshake still proves the port was open (a refused port answers the SYN
# itself, which is ECONNREFUSED).
_OPEN = frozenset({0, errno.ECONNRESET})
_DOWN = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH})
# Local shortages (ephemeral ports, buffers): back off and retry the same probe.
_RETRY = frozenset({errno.EAGAIN, errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.ENOMEM})
_NO_FDS = frozenset({errno.EMFILE, errno.ENFILE})
_RETRY_GIVE_UP_SECONDS = 10.0
_NO_FDS_MESSAGE = (
    "cannot open sockets for the sweep (too many open files): lower the concurrency or raise 'ulimit -n'"
)


@dataclass
class _Outcome:
    """What one connect loop did, apart from the open ports it emitted."""

    probes: int = 0
    timeouts: int = 0
    down: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    stopped: bool = False

    def merge(self, other: _Outcome) -> None:
        self.probes += other.probes
        self.timeouts += other.timeouts
        self.down.extend(other.down)
        self.errors.update(other.errors)
        self.stopped = self.stopped or other.stopped


def _connect_loop(
    addresses: Sequence[str],
    ports: Sequence[int],
    *,
    concurrency: int,
    rate: float,
    per_host: int,
    timeout: float,
    emit_open: Callable[[str, int], None],
    tick: Callable[[int], None],
    should_stop: Callable[[], bool] | None = None,
    control_fd: int | None = None,
) -> _Outcome:
    """Probe every (address, port) once within the limits; return the counts.

    ``emit_open`` gets each open port, ``tick`` the number of finished probes every
    TICK_SECONDS. The loop ends early when ``should_stop()`` is true or ``control_fd``
    becomes readable (a stop message, or EOF because the parent went away). Every socket it
    opened is closed when it returns or raises.
    """
    out = _Outcome()
    nports = len(ports)
    nhosts = len(addresses)
    families = [socket.AF_INET6 if ":" in a else socket.AF_INET for a in addresses]
    next_port = [0] * nhosts  # index into ports of each host's next probe
    busy = [0] * nhosts  # connects in flight per host
    ready: deque[int] = deque(range(nhosts))  # hosts with ports left and below per_host
    inflight: dict[int, tuple[socket.socket, int, int]] = {}  # fd -> (socket, host, port)
    pending: deque[tuple[float, socket.socket]] = deque()  # issue order == deadline order
    down_hosts: set[int] = set()
    finished = 0  # probes answered, timed out, or skipped because their host is down
    limit = concurrency
    burst = max(1.0, rate * BURST_SECONDS)
    tokens = 1.0
    retry_since = 0.0

    try:
        ep = select.epoll()
    except OSError as exc:
        if exc.errno in _NO_FDS:
            raise ScanFailed(_NO_FDS_MESSAGE) from exc
        raise
    # Hot-loop aliases: attribute lookups are a measurable share of a loopback connect.
    new_socket = socket.socket
    monotonic = time.monotonic
    register = ep.register
    poll = ep.poll
    take = inflight.pop
    epollout = select.EPOLLOUT
    sol_socket, so_error = socket.SOL_SOCKET, socket.SO_ERROR
    einprogress, econnrefused, econnaborted = errno.EINPROGRESS, errno.ECONNREFUSED, errno.ECONNABORTED
    spares: dict[int, list[socket.socket]] = {socket.AF_INET: [], socket.AF_INET6: []}

    def host_failed(h: int, err: int) -> int:
        """Record a non-open, non-refused answer; return how many probes it skipped."""
        if err in _DOWN:
            skipped = nports - next_port[h]
            next_port[h] = nports
            if h not in down_hosts:
                down_hosts.add(h)
                out.down.append(addresses[h])
            return skipped
        if err == errno.ETIMEDOUT:
            out.timeouts += 1
        else:
            out.errors[errno.errorcode.get(err, str(err))] += 1
        return 0

    if control_fd is not None:
        register(control_fd, select.EPOLLIN)
    now = last = monotonic()
    next_tick = now + TICK_SECONDS
    try:
        while True:
            if rate:
                tokens = min(burst, tokens + (now - last) * rate)
                last = now
            budget = limit - len(inflight)
            if rate and tokens < budget:
                budget = int(tokens)
            backoff = False
            while budget > 0 and ready:
                h = ready.popleft()
                i = next_port[h]
                if i >= nports:
                    continue  # stale entry: the host went down meanwhile
                pool = spares[families[h]]
                if pool:
                    s = pool.pop()
                else:
                    try:
                        s = new_socket(families[h], _SOCK_STREAM_NB)
                    except OSError as exc:
                        if exc.errno not in _NO_FDS:
                            raise
                        ready.appendleft(h)
                        if not inflight:
                            raise ScanFailed(_NO_FDS_MESSAGE) from exc
                        # Hold concurrency at what the process can actually open.
                        limit = len(inflight)
                        break
                port = ports[i]
                target = (addresses[h], port)
                err = s.connect_ex(target)
                failed_in_progress = False
                if err == einprogress:
                    # On loopback (and any path answered inside the syscall) a refusal is
                    # already known here: reading it now skips epoll for the common case.
                    err = s.getsockopt(sol_socket, so_error)
                    if err:
                        failed_in_progress = True
                    else:
                        err = einprogress
                if err == einprogress:
                    fd = s.fileno()
                    register(fd, epollout)
                    inflight[fd] = (s, h, port)
                    pending.append((now + timeout, s))
                    next_port[h] = i + 1
                    b = busy[h] + 1
                    busy[h] = b
                    if i + 1 < nports and b < per_host:
                        ready.append(h)
                else:
                    # A connect that failed after EINPROGRESS leaves the socket in CLOSE state;
                    # one more connect() on it only resets it (ECONNABORTED, nothing is sent)
                    # and it can serve the next probe: half the syscalls of a fresh socket.
                    # Anything but ECONNABORTED (another OS, a soft error) and it is closed.
                    if failed_in_progress and len(pool) < 4 and s.connect_ex(target) == econnaborted:
                        pool.append(s)
                    else:
                        s.close()
                    if err in _RETRY:
                        ready.appendleft(h)
                        if not retry_since:
                            retry_since = now
                        elif now - retry_since > _RETRY_GIVE_UP_SECONDS:
                            raise ScanFailed(
                                f"the sweep could not open connections for "
                                f"{_RETRY_GIVE_UP_SECONDS:.0f} s "
                                f"({os.strerror(err)}): lower the concurrency or the rate"
                            )
                        backoff = True
                        break
                    next_port[h] = i + 1
                    finished += 1
                    if err in _OPEN:
                        emit_open(addresses[h], port)
                    elif err != econnrefused:
                        finished += host_failed(h, err)
                    if next_port[h] < nports:
                        ready.append(h)
                retry_since = 0.0
                out.probes += 1
                budget -= 1
                tokens -= 1.0

            if not inflight and not ready:
                break

            # Sleep until something can happen: an answer, a deadline, a token, a tick.
            wait = next_tick - now
            if pending:
                wait = min(wait, pending[0][0] - now)
            if ready and len(inflight) < limit:
                wait = min(wait, 0.002 if backoff else max(0.0, (1.0 - tokens) / rate) if rate else 0.0)
            events = poll(max(wait, 0.0))

            for fd, _mask in events:
                entry = take(fd, None)
                if entry is None:  # the control pipe: a stop message or the parent is gone
                    out.stopped = True
                    return out
                s, h, port = entry
                err = s.getsockopt(sol_socket, so_error)
                s.close()
                finished += 1
                b = busy[h]
                busy[h] = b - 1
                if err in _OPEN:
                    emit_open(addresses[h], port)
                elif err != econnrefused:
                    finished += host_failed(h, err)
                if b == per_host and next_port[h] < nports:
                    ready.append(h)  # it was parked at its per-host cap

            now = monotonic()
            while pending:
                deadline, s = pending[0]
                if s.fileno() == -1:  # answered already
                    pending.popleft()
                    continue
                if deadline > now:
                    break
                pending.popleft()
                _, h, port = take(s.fileno())
                s.close()
                finished += 1
                out.timeouts += 1
                b = busy[h]
                busy[h] = b - 1
                if b == per_host and next_port[h] < nports:
                    ready.append(h)

            if now >= next_tick:
                next_tick = now + TICK_SECONDS
                tick(finished)
            if should_stop is not None and should_stop():
                out.stopped = True
                return out
        tick(finished)
        return out
    finally:
        for s, _, _ in inflight.values():
            s.close()
        for pool in spares.values():
            for s in pool:
                s.close()
        ep.close()


# --- worker processes --------------------------------------------------------------------------


_WORKER_BLOCKED = {signal.SIGINT, signal.SIGTERM}


def _die_with_parent() -> None:
    """Ask Linux to kill this worker if the parent dies (belt and braces with the pipe EOF)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_main(
    conn: multiprocessing.connection.Connection,
    addresses: list[str],
    ports: tuple[int, ...],
    limits: dict[str, Any],
    parent_pid: int,
    inherited: list[multiprocessing.connection.Connection],
) -> None:
    """Run one share of the sweep and stream ("tick", opens, done) / ("end", opens, outcome)."""
    # The parent decides what Ctrl-C means; a worker stops when told, when orphaned, or on a
    # SIGTERM sent to the whole process group (then it still reports what it found).
    terminated = [False]

    def on_term(signum: int, frame: object) -> None:
        terminated[0] = True

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_BLOCKED)
    _die_with_parent()
    if os.getppid() != parent_pid:
        return
    for other in inherited:  # other workers' parent ends: holding them would hide their EOF
        other.close()
    found: list[tuple[str, int]] = []

    def tick(done: int) -> None:
        conn.send(("tick", found, done))
        found.clear()

    try:
        outcome = _connect_loop(
            addresses,
            ports,
            emit_open=lambda address, port: found.append((address, port)),
            tick=tick,
            should_stop=lambda: terminated[0],
            control_fd=conn.fileno(),
            **limits,
        )
        conn.send(("end", found, outcome))
    except (BrokenPipeError, EOFError):
        pass  # the parent is gone: nothing to report to
    except BaseException as exc:  # report, never print a traceback from a worker
        message = str(exc) if isinstance(exc, CamauditError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            conn.send(("error", found, message))


def _plan_workers(probes: int, hosts: int, config: SweepConfig) -> int:
    if config.rate and config.rate <= ONE_CORE_RATE:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if not hasattr(select, "epoll") or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(cores, probes // MIN_PROBES_PER_WORKER, hosts, config.concurrency))


def _run_workers(
    addresses: list[str],
    ports: tuple[int, ...],
    config: SweepConfig,
    concurrency: int,
    nworkers: int,
    on_found: Callable[[str, int], None],
    on_done: Callable[[int], None],
    stop: threading.Event | None,
) -> _Outcome:
    ctx = multiprocessing.get_context("fork")
    outcome = _Outcome()
    procs: list[multiprocessing.process.BaseProcess] = []
    conns: list[multiprocessing.connection.Connection] = []
    done = [0] * nworkers
    ended: set[int] = set()
    failure: str | None = None
    # Block SIGINT/SIGTERM while forking, so that no worker dies of one before its handlers are set.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_BLOCKED)
    try:
        try:
            for w in range(nworkers):
                limits = {
                    "concurrency": concurrency // nworkers + (1 if w < concurrency % nworkers else 0),
                    "rate": config.rate / nworkers,
                    "per_host": config.per_host,
                    "timeout": config.connect_timeout,
                }
                parent_end, child_end = ctx.Pipe(duplex=True)
                conns.append(parent_end)
                # The child closes every parent end it inherits, its own included, so that
                # the parent's exit shows up in the child as EOF on its pipe.
                proc = ctx.Process(
                    target=_worker_main,
                    args=(child_end, addresses[w::nworkers], ports, limits, os.getpid(), list(conns)),
                    name=f"camaudit-sweep-{w}",
                    daemon=True,
                )
                procs.append(proc)
                proc.start()
                child_end.close()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

        index = {id(c): w for w, c in enumerate(conns)}
        stop_sent_at = 0.0
        while len(ended) < nworkers:
            if stop is not None and stop.is_set() and not stop_sent_at:
                stop_sent_at = time.monotonic()
                for w, c in enumerate(conns):
                    if w not in ended:
                        with contextlib.suppress(OSError):
                            c.send(("stop",))
            if stop_sent_at and time.monotonic() - stop_sent_at > STOP_GRACE_SECONDS:
                outcome.stopped = True
                break
            live = [c for w, c in enumerate(conns) if w not in ended]
            for ready_conn in multiprocessing.connection.wait(live, timeout=0.05):
                assert isinstance(ready_conn, multiprocessing.connection.Connection)
                w = index[id(ready_conn)]
                try:
                    message = ready_conn.recv()
                except (EOFError, OSError):
                    ended.add(w)
                    if failure is None and not stop_sent_at:
                        failure = f"sweep worker {w} ended unexpectedly (exit code {procs[w].exitcode})"
                    continue
                for address, port in message[1]:
                    on_found(address, port)
                if message[0] == "tick":
                    done[w] = message[2]
                    on_done(sum(done))
                elif message[0] == "end":
                    ended.add(w)
                    outcome.merge(message[2])
                else:  # "error"
                    ended.add(w)
                    failure = failure or message[2]
            if failure is not None:
                break
    finally:
        for c in conns:  # EOF on its pipe stops any worker still running
            c.close()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in procs:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
                worker.join(1.0)
    if failure is not None:
        raise ScanFailed(f"the port sweep failed: {failure}")
    return outcome


# --- the public entry point ------------------------------------------------------------------


def _fit_open_files(concurrency: int, notes: list[str]) -> int:
    """Raise the soft open-file limit for ``concurrency`` sockets, or lower the concurrency."""
    need = concurrency + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return concurrency
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft >= need:
        return concurrency
    fitted = max(1, soft - 64)
    notes.append(
        f"concurrency lowered from {concurrency} to {fitted}: the open-file limit is {soft} "
        "(raise it with 'ulimit -n')"
    )
    return fitted


def sweep(
    addresses: Sequence[str],
    config: SweepConfig,
    *,
    on_open: OnOpen | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> SweepResult:
    """TCP-connect every address on every port of ``config.ports``; return the open ones.

    ``on_open(address, port)`` runs in the caller's thread as each open port is found;
    ``progress(done, total)`` at most about ten times a second and once at the end. When
    ``stop`` is set the sweep ends within about half a second, keeps what it found and says
    ``interrupted=True``. No socket or worker process outlives the call, whatever happens.
    Raises ConfigError/ScopeError for bad input and ScanFailed when the sweep cannot run.
    """
    check_sweep_config(config)
    targets = normalise_addresses(addresses)
    started = time.monotonic()
    notes: list[str] = []
    ports = tuple(dict.fromkeys(config.ports))  # a port listed twice is probed once
    total = len(targets) * len(ports)
    found: dict[str, set[int]] = {}
    last_progress = [0.0]

    def on_found(address: str, port: int) -> None:
        ports = found.setdefault(address, set())
        if port not in ports:
            ports.add(port)
            if on_open is not None:
                on_open(address, port)

    def on_done(done: int) -> None:
        now = time.monotonic()
        if progress is not None and now - last_progress[0] >= 0.1:
            last_progress[0] = now
            progress(min(done, total), total)

    outcome = _Outcome()
    if targets and not (stop is not None and stop.is_set()):
        concurrency = _fit_open_files(config.concurrency, notes)
        nworkers = _plan_workers(total, len(targets), dataclasses.replace(config, concurrency=concurrency))
        log.debug("sweep: %d addresses x %d ports with %d process(es)", len(targets), len(ports), nworkers)
        if nworkers == 1:
            outcome = _connect_loop(
                targets,
                ports,
                concurrency=concurrency,
                rate=config.rate,
                per_host=config.per_host,
                timeout=config.connect_timeout,
                emit_open=on_found,
                tick=on_done,
                should_stop=stop.is_set if stop is not None else None,
            )
        else:
            outcome = _run_workers(targets, ports, config, concurrency, nworkers, on_found, on_done, stop)
    elif targets:
        outcome.stopped = True
    interrupted = outcome.stopped or (stop is not None and stop.is_set() and outcome.probes < total)

    if outcome.down:
        notes.append(
            f"{len(outcome.down)} address(es) unreachable (EHOSTUNREACH/ENETUNREACH: no ARP answer "
            "or no route); their remaining ports were skipped"
        )
    if outcome.timeouts:
        notes.append(
            f"{outcome.timeouts} connection attempt(s) got no answer within "
            f"{config.connect_timeout:g} s (filtered ports, or hosts that are down)"
        )
    for name, count in sorted(outcome.errors.items()):
        hint = " (a local firewall may be blocking the sweep)" if name in ("EACCES", "EPERM") else ""
        notes.append(f"{count} connection attempt(s) failed with {name}{hint}")
    if interrupted:
        notes.append(f"the sweep was stopped early: {outcome.probes} of {total} probes were made")
    if progress is not None:
        progress(total if not interrupted else min(outcome.probes, total), total)
    return SweepResult(
        open_ports={address: sorted(ports) for address, ports in found.items()},
        addresses=len(targets),
        probes=outcome.probes,
        elapsed=time.monotonic() - started,
        notes=notes,
        interrupted=interrupted,
    )

"""`peppol-ap worker`: background work of the gateway (outbound sending, webhook deliveries, ...).

Each task is `task(gateway) -> int`, the number of items it handled; the loop runs them in turn and sleeps
briefly when none had anything to do. Any number of workers may run against PostgreSQL (tasks claim their
rows with FOR UPDATE SKIP LOCKED); against SQLite run one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from importlib import import_module

from accesspoint.gateway import Gateway
from accesspoint.store import liveness
from accesspoint.store.types import utcnow

log = logging.getLogger(__name__)

Task = Callable[[Gateway], int]

# "module:function" of every task, imported on start so a module may depend on this one without a cycle.
TASKS: tuple[str, ...] = (
    "accesspoint.flows.sending:send_due",
    "accesspoint.flows.validation:validate_due",
    "accesspoint.flows.webhooks:deliver_due",
    "accesspoint.flows.registrations:retry_due",
    "accesspoint.flows.maintenance:sweep_blobs",
    "accesspoint.flows.retention:apply_retention",
)


def load_tasks() -> list[tuple[str, Task]]:
    tasks = []
    for spec in TASKS:
        module, _, name = spec.partition(":")
        tasks.append((spec, getattr(import_module(module), name)))
    return tasks


class Heartbeat:
    """Tells the database this worker is alive, a few times per staleness window (not every round: an idle worker
    runs a round a second, and one write a second is a cost on SQLite)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.every = gateway.config.health.worker_stale_seconds / 4
        self._last = -float("inf")

    def beat(self) -> None:
        if time.monotonic() - self._last < self.every:
            return
        try:
            with self.gateway.write() as session:
                liveness.beat(session, self.name, utcnow())
            self._last = time.monotonic()
        except Exception:  # the database may be down for a moment; health will say so, the work goes on
            log.exception("worker heartbeat failed")

    def forget(self) -> None:
        try:
            with self.gateway.write() as session:
                liveness.forget(session, self.name)
        except Exception:
            log.exception("worker heartbeat could not be removed; it goes stale by itself")


def run_worker(gateway: Gateway, *, once: bool = False, stop: threading.Event | None = None,
               idle_seconds: float = 1.0) -> int:
    """Run the tasks until `stop` is set (or one round with once=True); returns the items handled."""
    stop = stop or threading.Event()
    tasks = load_tasks()
    heartbeat = Heartbeat(gateway)
    total = 0
    try:
        while not stop.is_set():
            heartbeat.beat()
            handled = 0
            for name, task in tasks:
                try:
                    handled += task(gateway)
                except Exception:  # one failing task must not stop the others; it is retried next round
                    log.exception("worker task failed", extra={"task": name})
            total += handled
            if once:
                break
            if not handled:
                stop.wait(idle_seconds)
    finally:
        if not once:  # a --once run (cron) leaves its beat: it did run, and the next run is due
            heartbeat.forget()
    return total

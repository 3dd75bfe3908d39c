"""The coordinator: the scenario's side of the driver program and its tasks.

A TCP server on 127.0.0.1: the driver program says hello and takes jobs from it, and each task of those jobs
reports to it and blocks until it is released, so that the caller knows exactly when tasks run.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from examples.spark.install import LOOPBACK


@dataclass
class Task:
    job: str
    index: int
    pid: int
    at: float
    conn: socket.socket


class Coordinator:
    """A TCP server on 127.0.0.1 that the driver program and every task of its jobs connect to.

    The driver says hello (app id, spark.executor.extraJavaOptions) and then takes `job NAME N` and `stop`
    lines and reports `result NAME {...}`. Each task says `task JOB INDEX PID` and then blocks until it is
    sent `go`: a test knows exactly when tasks run, and holds them running as long as it likes.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self.listener.getsockname()[1])
        self.cond = threading.Condition()
        self.hello: dict[str, object] | None = None
        self.driver: socket.socket | None = None
        self.tasks: dict[str, dict[int, Task]] = {}
        self.attempts: dict[str, int] = {}  # task connections per job: more than its tasks means some were re-run
        self.released: set[str] = set()
        self.results: dict[str, dict[str, object]] = {}
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="coordinator").start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            with self.cond:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="coordinator-conn").start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            first = reader.readline().decode()
            kind, _, rest = first.strip().partition(" ")
            if kind == "task":
                job, index, pid = rest.split()
                task = Task(job, int(index), int(pid), time.monotonic(), conn)
                with self.cond:
                    self.tasks.setdefault(job, {})[task.index] = task
                    self.attempts[job] = self.attempts.get(job, 0) + 1
                    go = job in self.released
                    self.cond.notify_all()
                if go:
                    self._go(task)
                return
            if kind == "driver":
                with self.cond:
                    self.hello = json.loads(rest)
                    self.driver = conn
                    self.cond.notify_all()
                for raw in reader:
                    kind, _, rest = raw.decode().strip().partition(" ")
                    if kind == "result":
                        job, _, data = rest.partition(" ")
                        with self.cond:
                            self.results[job] = json.loads(data)
                            self.cond.notify_all()
        except (OSError, ValueError):  # a connection that went away or said nothing sensible
            return
        finally:
            with self.cond:
                self.cond.notify_all()

    @staticmethod
    def _go(task: Task) -> None:
        with contextlib.suppress(OSError):  # the task is gone (its executor died): nothing to release
            task.conn.sendall(b"go\n")

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what} within {timeout:g}s")
                self.cond.wait(left)

    def wait_hello(self, timeout: float) -> dict[str, object]:
        self._wait(lambda: self.hello is not None, timeout, "the driver program did not connect")
        assert self.hello is not None
        return self.hello

    def send(self, line: str) -> None:
        assert self.driver is not None, "the driver program is not connected"
        self.driver.sendall(f"{line}\n".encode())

    def wait_tasks(self, job: str, count: int, timeout: float) -> list[Task]:
        """Block until `count` tasks of `job` have connected (they are running on an executor)."""
        self._wait(lambda: len(self.tasks.get(job, {})) >= count, timeout, f"{count} tasks of {job} did not start")
        with self.cond:
            return sorted(self.tasks[job].values(), key=lambda task: task.index)

    def wait_attempts(self, job: str, count: int, timeout: float) -> None:
        """Block until tasks of `job` have connected `count` times in all (re-runs after an executor was lost)."""
        self._wait(lambda: self.attempts.get(job, 0) >= count, timeout, f"{count} task attempts of {job} did not start")

    def release(self, job: str) -> None:
        """Let every task of `job` finish, now and later (a retried task is released at once)."""
        with self.cond:
            self.released.add(job)
            tasks = list(self.tasks.get(job, {}).values())
        for task in tasks:
            self._go(task)

    def wait_result(self, job: str, timeout: float) -> dict[str, object]:
        self._wait(lambda: job in self.results, timeout, f"job {job} did not finish")
        with self.cond:
            return self.results[job]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.cond:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

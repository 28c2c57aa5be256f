# SPDX-License-Identifier: MIT
"""kickgated under test, and the kickgate CLI pointed at it.

Kickgated writes a configuration from the [broker], [instance] and [rule]
settings it is given into a temporary directory of its own, together with
the listening socket, starts `kickgated -F` from $KG_BUILD_DIR with audit
lines on stderr (captured to a file there), and waits, bounded, until the
daemon listens. The started process is the supervisor; the broker is its
child, named by the supervisor's log line at start and after each reload
(reload() sends SIGHUP and waits for the outcome). Frontends are children
too: a few wait in a pool, exec'd and confined ahead of any client
(idle_frontends()), and each serves one client connection, handed over
on accept, and is gone once its request is passed on (frontends()).
Leaving the with block stops them all (SIGTERM, then SIGKILL after a
while) and removes the directory.

Unless the [broker] settings name a frontend_user, each daemon gets a
dedicated frontend account of its own (an Accounts user, removed again on
stop), as kickgated refuses nobody and any account other processes run
as.

The directory is world-traversable and the socket keeps the daemon's
default mode, so callers with other uids (run(..., uid=...)) can connect;
whether they get anything is the policy's business.
"""

import collections
import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import tempfile

from kgtest.env import Accounts, Service, stop_process, wait_until

BUILD_DIR_ENV = "KG_BUILD_DIR"
START_TIMEOUT = 15
STOP_TIMEOUT = 10
CMD_TIMEOUT = 30
AUDIT_WAIT = 5
SUN_PATH_MAX = 107
LOG_PREFIX = "kickgated"
AUDIT_PREFIX = "kickgated: audit: "
# The supervisor names the broker it started: at start and after a reload.
BROKER_RE = re.compile(r"^kickgated\[supervisor\]: (?:listening on|reloaded) "
                       r".*, broker pid (\d+)$", re.MULTILINE)
# How kickgated's refusal of a frontend_user ends.
ACCOUNT_HINT = ("; create a dedicated account: adduser --system --group "
                "--no-create-home _kickgate (or useradd --system "
                "--user-group --no-create-home --shell /usr/sbin/nologin "
                "_kickgate)")
# A SIGHUP that left the running broker in place.
REFUSED_RE = re.compile(r"^kickgated\[supervisor\]: reload (?:refused|failed)",
                        re.MULTILINE)


class DaemonError(RuntimeError):
    pass


def build_dir():
    path = os.environ.get(BUILD_DIR_ENV)
    if not path:
        raise DaemonError(f"{BUILD_DIR_ENV} is not set (meson test sets it "
                          "to the build directory)")
    return path


class Result(collections.namedtuple("Result", "code out err")):
    """(exit code, stdout, stderr) of one kickgate run; .pid is the pid
    the broker saw, which the audit line names."""

    def __new__(cls, code, out, err, pid):
        self = super().__new__(cls, code, out, err)
        self.pid = pid
        return self


def _ini_value(value):
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (list, tuple)):
        text = " ".join(str(v) for v in value)
    else:
        text = str(value)
    if any(c in text for c in "\n\r\0"):
        raise ValueError(f"line break or NUL in a config value: {text!r}")
    return text


def _section(header, settings):
    lines = [f"[{header}]"]
    lines += [f"{key} = {_ini_value(v)}" for key, v in settings.items()]
    return "\n".join(lines) + "\n"


def parse_audit(line):
    """An audit line (without its prefix) as {key: value}; a quoted value
    (the glob) loses its quotes. Escaping keeps spaces out of values."""
    fields = {}
    for item in line.split(" "):
        key, sep, value = item.partition("=")
        if sep:
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            fields[key] = value
    return fields


def _frontend_state(pid):
    """"serving" when pid is an exec'd frontend holding a client's socket
    at fd 3 (not the copy of fd 4 it holds there while it starts), "idle"
    when it is one without, None when it is no frontend (yet)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if f.read().split(b"\0")[1:2] != [b"--frontend"]:
                return None
        try:
            client = os.readlink(f"/proc/{pid}/fd/3")
        except FileNotFoundError:
            return "idle"
        return "serving" if client != os.readlink(f"/proc/{pid}/fd/4") \
            else "idle"
    except OSError:
        return None


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _wait_pidfd(pidfd, timeout):
    """True once the process behind pidfd has exited (readable pidfd)."""
    ready, _, _ = select.select([pidfd], [], [], timeout)
    return bool(ready)


class Kickgated(Service):
    """A running kickgated; use as a context manager.

    broker: [broker] keys (listen and audit are set here); instances:
    {name: anvil path, or {key: value} for the whole section}; rules:
    {name: {key: value}}, written in order.
    Values may be strings, numbers, booleans or lists (joined by spaces).
    pass_fds: descriptors of this process that kickgated inherits.
    """

    def __init__(self, broker=None, instances=None, rules=None,
                 pass_fds=()):
        self.broker = dict(broker or {})
        self.pass_fds = tuple(pass_fds)
        self.instances = dict(instances or {})
        self.rules = dict(rules or {})
        for key in ("listen", "audit"):
            if key in self.broker:
                raise ValueError(f"[broker] {key} is set by Kickgated")
        self.dir = None
        self._proc = None
        self._accounts = None
        self.frontend_account = None  # pwd entry of the account made here
        # Every broker seen, held until stop(): no pid among them can be
        # reused meanwhile.
        self._pidfds = {}

    # Paths -------------------------------------------------------------

    @property
    def sock(self):
        return os.path.join(self.dir, "kg.sock")

    @property
    def conf_path(self):
        return os.path.join(self.dir, "kickgated.conf")

    @property
    def log_path(self):
        return os.path.join(self.dir, "kickgated.stderr")

    # Lifecycle -----------------------------------------------------------

    def start(self):
        try:
            self.dir = tempfile.mkdtemp(prefix="kgk", dir="/tmp")
            os.chmod(self.dir, 0o755)
            if len(self.sock) > SUN_PATH_MAX:
                raise DaemonError(f"temp dir path too long: {self.dir}")
            self._make_frontend_account()
            self._write_conf()
            self._launch()
        except BaseException:
            self.stop()
            raise

    def _make_frontend_account(self):
        if "frontend_user" in self.broker:
            return
        self._accounts = Accounts()
        self.frontend_account = self._accounts.user("fe")

    def config_text(self):
        broker = {"listen": self.sock, "audit": "stderr", **self.broker}
        if self.frontend_account and "frontend_user" not in broker:
            broker["frontend_user"] = self.frontend_account.pw_name
        text = _section("broker", broker)
        for name, instance in self.instances.items():
            settings = (instance if isinstance(instance, dict)
                        else {"anvil": instance})
            text += _section(f"instance {name}", settings)
        for name, settings in self.rules.items():
            text += _section(f"rule {name}", settings)
        return text

    def _write_conf(self):
        self.write_config_text(self.config_text())

    def write_config_text(self, text, mode=0o600):
        """Replaces the configuration file by text, with mode, in one
        rename: a reload reads either the old file or the new one."""
        tmp = self.conf_path + ".new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, self.conf_path)

    def reconfigure(self, broker=None, instances=None, rules=None):
        """Rewrites the configuration with the parts given replaced."""
        for name, part in (("broker", broker), ("instances", instances),
                           ("rules", rules)):
            if part is not None:
                setattr(self, name, dict(part))
        self._write_conf()

    def _launch(self):
        argv = [os.path.join(build_dir(), "kickgated"), "-F", "-c",
                self.conf_path]
        with open(self.log_path, "w") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=log,
                                          pass_fds=self.pass_fds)
        listening = wait_until(lambda: self._proc.poll() is not None
                               or (self._brokers_logged() and
                                   os.path.exists(self.sock)),
                               START_TIMEOUT)
        if self._proc.poll() is not None:
            raise DaemonError(f"kickgated exited with {self._proc.returncode}"
                              f" during start: {self.log_text()}")
        if not listening:
            raise DaemonError(f"kickgated not listening within "
                              f"{START_TIMEOUT}s: {self.log_text()}")
        self._hold_broker()

    def _brokers_logged(self):
        """The pid of each broker the supervisor started, in order."""
        return [int(m.group(1)) for m in BROKER_RE.finditer(self.log_text())]

    def _hold_broker(self):
        """Holds a pidfd of the broker logged last, which must be a child
        of the supervisor."""
        pid = self._brokers_logged()[-1]
        if pid not in self._pidfds:
            self._pidfds[pid] = os.pidfd_open(pid)
        children = _children(self._proc.pid)
        if pid not in children:
            raise DaemonError(f"broker {pid} is not among the children "
                              f"{children} of the supervisor "
                              f"{self._proc.pid}")

    def reload(self):
        """SIGHUP to the supervisor; waits, bounded, until it has logged a
        new broker (returns True) or kept the running one (False)."""
        brokers = len(self._brokers_logged())
        refused = len(REFUSED_RE.findall(self.log_text()))
        self._proc.send_signal(signal.SIGHUP)
        done = wait_until(
            lambda: len(self._brokers_logged()) > brokers or
            len(REFUSED_RE.findall(self.log_text())) > refused,
            START_TIMEOUT)
        if not done:
            raise DaemonError(f"no reload outcome within {START_TIMEOUT}s: "
                              f"{self.log_text()}")
        if len(self._brokers_logged()) == brokers:
            return False
        self._hold_broker()
        return True

    def stop(self):
        """Stops every process (bounded) and removes the directory."""
        try:
            self._stop_processes()
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
            if self._accounts:
                self._accounts.close()
                self._accounts = None
                self.frontend_account = None

    def _stop_processes(self):
        if self._proc is not None:
            stop_process(self._proc, STOP_TIMEOUT)
        # The supervisor stops its children; if a broker outlives it, its
        # pidfd still names exactly that process.
        for pidfd in self._pidfds.values():
            if not _wait_pidfd(pidfd, STOP_TIMEOUT):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                _wait_pidfd(pidfd, STOP_TIMEOUT)
            os.close(pidfd)
        self._pidfds = {}

    # Queries -------------------------------------------------------------

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """The supervisor's exit status once it exits within timeout
        seconds; None if it still runs."""
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def supervisor(self):
        """The supervisor's pid: the started process."""
        return self._proc.pid

    def pids(self):
        """{"broker": pid} of the current broker of the running daemon;
        empty once it has exited."""
        if self._proc is None or self._proc.poll() is not None:
            return {}
        brokers = self._brokers_logged()
        if not brokers:
            return {}
        pid = brokers[-1]
        if pid not in self._pidfds or _wait_pidfd(self._pidfds[pid], 0):
            return {}
        return {"broker": pid}

    def _frontend_pids(self):
        """The supervisor's children that are no broker it started."""
        brokers = set(self._brokers_logged())
        return [pid for pid in _children(self._proc.pid)
                if pid not in brokers]

    def frontends(self):
        """The pids of the frontends serving a client now: those holding
        a client's socket at fd 3."""
        return [pid for pid in self._frontend_pids()
                if _frontend_state(pid) == "serving"]

    def idle_frontends(self):
        """The pids of the pooled frontends, waiting for a client."""
        return [pid for pid in self._frontend_pids()
                if _frontend_state(pid) == "idle"]

    def running(self):
        return set(self.pids()) == {"broker"}

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def audit_lines(self):
        """The audit lines so far, without their prefix."""
        return [line[len(AUDIT_PREFIX):]
                for line in self.log_text().splitlines()
                if line.startswith(AUDIT_PREFIX)]

    def audit_for(self, pid, timeout=AUDIT_WAIT):
        """The parsed audit lines naming client pid, once there is one.

        The broker writes the line after the reply, so it may trail the
        CLI's exit by a moment.
        """
        def lines():
            return [a for a in map(parse_audit, self.audit_lines())
                    if a.get("pid") == str(pid)]
        wait_until(lines, timeout)
        return lines()

    def run_audited(self, *args, **kwargs):
        """run(ARGS, ...), and the one audit line the request left,
        parsed: (Result, {key: value}). DaemonError unless there is
        exactly one."""
        res = self.run(*args, **kwargs)
        lines = self.audit_for(res.pid)
        if len(lines) != 1:
            raise DaemonError(f"kickgate {' '.join(args)}: {len(lines)} "
                              f"audit lines for pid {res.pid}: "
                              f"{self.log_text()[-2000:]}")
        return res, lines[0]

    def run(self, *args, uid=None, gid=None, groups=None, env=None):
        """Runs kickgate ARGS with -S SOCK after the command word.

        uid: run as that uid (gid defaults to its passwd group, or the uid;
        groups to none). env: variables to add, or remove when None.
        Returns a Result.
        """
        argv = [os.path.join(build_dir(), "kickgate")]
        if args:
            argv += [args[0], "-S", self.sock, *args[1:]]
        if uid is not None:
            argv = _setpriv(uid, gid, groups) + argv
        full_env = dict(os.environ)
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=full_env,
                                encoding="utf-8", errors="surrogateescape")
        try:
            out, err = proc.communicate(timeout=CMD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        return Result(proc.returncode, out, err, proc.pid)


def _setpriv(uid, gid, groups):
    """setpriv execs the command, so the broker sees its pid."""
    if gid is None:
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = uid
    argv = ["setpriv", "--reuid", str(uid), "--regid", str(gid)]
    if groups:
        argv += ["--groups", ",".join(str(g) for g in groups)]
    else:
        argv.append("--clear-groups")
    return argv + ["--"]

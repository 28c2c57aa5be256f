# SPDX-License-Identifier: MIT
"""A private, throwaway Dovecot 2.3 instance on loopback.

Everything lives in one temporary directory under /tmp: configuration,
passwd-file, base_dir (sockets, master.pid), state_dir, log and mail. The
directory name is short because the unix sockets inside it must fit in
sun_path (107 bytes plus NUL).

Mail processes run as a dedicated system user created for this instance
(kgtmail...), not as nobody: nobody is the unprivileged user of other
daemons (kickgated's frontend among them), and a process sharing its uid
with the mail processes could signal them, which would hide exactly the
mistakes the tests look for. first_valid_uid/last_valid_uid (and the gid
pair) are pinned to that user, so Dovecot runs mail processes as it and
nothing else. Login and internal processes keep Debian's users
(dovenull, dovecot); the internal user's group may read the passwd-file.

User names reach anvil exactly as logged in: no lowercasing and no
restriction on their characters, so tests can use hostile names ('/', TAB,
\001, ...). Mail directories are named by the MD5 of the user name, which
keeps such names out of paths.

The instance listens only on 127.0.0.1 and ::1: IMAP and POP3 without TLS
on free ports; every other inet listener is disabled with port 0.
"""

import grp
import os
import shutil
import signal
import socket
import subprocess
import tempfile

from kgtest.env import Accounts, Service, wait_until

LOOPBACK = ("127.0.0.1", "::1")
# Debian's accounts for Dovecot's login and internal processes.
LOGIN_USER = "dovenull"
INTERNAL_USER = "dovecot"
CMD_TIMEOUT = 30
START_TIMEOUT = 20
STOP_TIMEOUT = 15
# Free ports are found by binding port 0, then released for Dovecot to bind:
# another program may take one in between, so start() retries with new ports.
START_TRIES = 3
SUN_PATH_MAX = 107
# base_dir/NAME for Dovecot's longest socket names (login/imap-urlauth,
# replication-notify-fifo, ...), with margin.
SOCKET_NAME_ROOM = 40
# Per user and client address Dovecot allows 10 connections by default;
# tests open more than that on purpose.
USERIP_CONNECTIONS = 1000
ANVIL_TIMEOUT = 5
ANVIL_REPLY_MAX = 1 << 20


class DovecotError(RuntimeError):
    pass


def _anvil_recv(sock, data, done):
    """Reads from an anvil socket until done(data); returns data.

    Bounded by the socket's timeout per read and by ANVIL_REPLY_MAX.
    """
    while not done(data):
        chunk = sock.recv(65536)
        if not chunk:
            raise DovecotError(f"anvil closed the connection after {data!r}")
        data += chunk
        if len(data) > ANVIL_REPLY_MAX:
            raise DovecotError("anvil reply too long")
    return data


def _anvil_connect(path):
    """A connected unix stream socket with ANVIL_TIMEOUT set."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(ANVIL_TIMEOUT)
        s.connect(path)
    except BaseException:
        s.close()
        raise
    return s


def _free_port():
    """Returns a TCP port that is free on both 127.0.0.1 and ::1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                try:
                    s6.bind(("::1", port))
                except OSError:
                    continue
                return port
    raise DovecotError("no TCP port free on both 127.0.0.1 and ::1")


def _check_field(kind, value):
    if not value or any(c in value for c in ":\n\r\0"):
        raise ValueError(f"{kind} unusable in a passwd-file: {value!r}")


def _stat_fields(pid):
    """Fields 3.. of /proc/PID/stat (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # comm, in parentheses, may hold spaces and parentheses itself.
    return stat[stat.rfind(b")") + 2:].split()


def _children(ppid):
    """{pid: start time} of the processes whose parent is ppid."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and len(fields) > 19 and int(fields[1]) == ppid:
                found[int(entry)] = fields[19]
    return found


def _running(pid, start_time):
    """True while pid is still the process that started at start_time."""
    fields = _stat_fields(pid)
    return bool(fields) and len(fields) > 19 and fields[19] == start_time


def _anvil_unescape(text):
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\x01" and i + 1 < len(text):
            out.append({"1": "\x01", "t": "\t", "n": "\n", "r": "\r",
                        "0": "\0"}.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# How the master is started: in the foreground as under systemd
# (`dovecot -F`, a child of the test), or detached as by an init script or
# an admin (`dovecot`: the started process forks the master, which calls
# setsid, and exits).
FOREGROUND = "foreground"
DETACHED = "detached"
START_MODES = (FOREGROUND, DETACHED)


class Dovecot(Service):
    """Runs a private Dovecot; use as a context manager.

    users: user name -> password. shared_imap: an imap process serves up
    to ten connections, and there is only one (process_limit 1) unless
    imap_process_limit says otherwise: the case of doveadm kick's -f.
    imap_process_limit: the imap process_limit (Dovecot's default is 100)
    for tests that open many sessions. anvil_group: a group given the anvil
    socket (mode 0660), as for a broker that does not run as root.
    mode: FOREGROUND or DETACHED, how the master is started (restart() may
    change it).
    """

    # How a shared imap process is kept up for any number of connections.
    SHARED_PROCESS_SETTING = "service_count = 0"

    def __init__(self, users, shared_imap=False, imap_process_limit=None,
                 anvil_group=None, mode=FOREGROUND):
        if mode not in START_MODES:
            raise ValueError(f"unknown start mode {mode!r}")
        for name, password in users.items():
            _check_field("user name", name)
            _check_field("password", password)
        self.users = dict(users)
        self.shared_imap = shared_imap
        self.imap_process_limit = imap_process_limit
        self.anvil_group = anvil_group
        self.mode = mode
        self.dir = None
        self.imap_port = None
        self.pop3_port = None
        self._proc = None  # the foreground master, a child of this process
        self._master = None  # (pid, start time) of the running master
        self._accounts = Accounts()
        self.mail_user = None

    # Paths -------------------------------------------------------------

    @property
    def conf_path(self):
        return os.path.join(self.dir, "dovecot.conf")

    @property
    def base_dir(self):
        return os.path.join(self.dir, "run")

    @property
    def anvil_path(self):
        return os.path.join(self.base_dir, "anvil")

    @property
    def log_path(self):
        return os.path.join(self.dir, "dovecot.log")

    # Lifecycle -----------------------------------------------------------

    def start(self):
        try:
            self._prepare()
            for attempt in range(START_TRIES):
                self.imap_port = _free_port()
                self.pop3_port = _free_port()
                self._write_conf()
                if self._launch(last=attempt == START_TRIES - 1):
                    return
        except BaseException:
            self.stop()
            raise

    def _prepare(self):
        self.mail_user = self._accounts.user("mail")
        self.dir = tempfile.mkdtemp(prefix="kgd", dir=self._temp_parent())
        # Dovecot's unprivileged processes must reach the sockets inside.
        os.chmod(self.dir, 0o755)
        if len(self.base_dir) + SOCKET_NAME_ROOM > SUN_PATH_MAX:
            raise DovecotError(f"temp dir path too long: {self.dir}")
        mail = os.path.join(self.dir, "mail")
        os.mkdir(mail, 0o700)
        os.chown(mail, self.mail_user.pw_uid, self.mail_user.pw_gid)
        self._write_passwd()

    def _write_passwd(self):
        uid, gid = self.mail_user.pw_uid, self.mail_user.pw_gid
        lines = "".join(f"{name}:{{PLAIN}}{pw}:{uid}:{gid}::::"
                        f"{self._passdb_extra(name)}\n"
                        for name, pw in self.users.items())
        path = os.path.join(self.dir, "passwd")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "w") as f:
            f.write(lines)
        # The auth process runs as the internal user and reads this file.
        os.chown(path, 0, self._internal_gid())

    def _passdb_extra(self, _name):
        """The passwd-file's extra fields for user name: none here."""
        return ""

    # What differs for a Dovecot in another root: where the temp dir is,
    # how paths look from inside, which programs run and whose accounts
    # they see.

    def _temp_parent(self):
        return "/tmp"

    def _inner(self, path):
        """path (a host path in the temp dir) as Dovecot sees it."""
        return path

    def _program(self, name):
        """argv prefix that runs Dovecot's program name (dovecot,
        doveadm)."""
        return [name]

    def _internal_gid(self):
        return grp.getgrnam(INTERNAL_USER).gr_gid

    def _services_conf(self):
        """The listener, service and protocol sections, which 2.3 and 2.4
        write alike."""
        imap_service = ""
        process_limit = self.imap_process_limit
        if self.shared_imap:
            imap_service += ("  client_limit = 10\n"
                             f"  {self.SHARED_PROCESS_SETTING}\n")
            process_limit = process_limit or 1
        if process_limit is not None:
            imap_service += f"  process_limit = {process_limit}\n"
        anvil_service = ""
        if self.anvil_group is not None:
            anvil_service = ("service anvil {\n  unix_listener anvil {\n"
                             f"    group = {self.anvil_group}\n"
                             "    mode = 0660\n  }\n}\n")
        return f"""\
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
service imap {{
{imap_service}}}
protocol imap {{
  mail_max_userip_connections = {USERIP_CONNECTIONS}
}}
protocol pop3 {{
  mail_max_userip_connections = {USERIP_CONNECTIONS}
}}
{anvil_service}"""

    def _write_conf(self):
        d = self._inner(self.dir)
        uid, gid = self.mail_user.pw_uid, self.mail_user.pw_gid
        conf = f"""\
base_dir = {self._inner(self.base_dir)}
state_dir = {d}/state
log_path = {self._inner(self.log_path)}
protocols = imap pop3
listen = {", ".join(LOOPBACK)}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
login_trusted_networks =
default_login_user = {LOGIN_USER}
default_internal_user = {INTERNAL_USER}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
auth_username_format = %u
auth_username_chars =
mail_location = maildir:{d}/mail/%Mu
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
{self._services_conf()}"""
        with open(self.conf_path, "w") as f:
            f.write(conf)

    def _launch(self, last):
        """Starts the master; False when a port was taken meanwhile.

        In the foreground the master is a child of this process: its pid
        is known at once, so an interrupted start cannot leave an unknown
        daemon behind, and it stays in this process's group, so a test
        runner that kills the group on timeout takes Dovecot with it.
        Detached, the master is known from master.pid once it is written.
        """
        out_path = os.path.join(self.dir, "dovecot.stderr")
        argv = self._program("dovecot")
        if self.mode == FOREGROUND:
            argv.append("-F")
        argv += ["-c", self._inner(self.conf_path)]
        with open(out_path, "w") as out:
            starter = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=out)
        if self.mode == FOREGROUND:
            self._proc = starter
        elif starter.wait(timeout=START_TIMEOUT) != 0:
            starter = None
        ready = wait_until(lambda: self._failed(starter) or self._ready(),
                           START_TIMEOUT)
        if self._failed(starter):
            with open(out_path, errors="replace") as f:
                detail = f.read().strip() + "\n" + self.log_tail()
            self._proc = None
            if "Address already in use" in detail and not last:
                return False
            raise DovecotError(f"dovecot exited during start: {detail}")
        if not ready:
            self._note_master()
            raise DovecotError("listeners not ready: " + self.log_tail())
        self._note_master()
        return True

    def _failed(self, starter):
        """The start failed: the starter or the master exited early."""
        if starter is None:
            return True
        if self.mode == FOREGROUND:
            return starter.poll() is not None
        return False

    def _note_master(self):
        pid = (self._proc.pid if self.mode == FOREGROUND
               else self._read_master_pid())
        fields = _stat_fields(pid) if pid else None
        if fields and len(fields) > 19:
            self._master = (pid, fields[19])

    def _read_master_pid(self):
        try:
            with open(os.path.join(self.base_dir, "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _ready(self):
        pid = self._read_master_pid()
        if pid is None or (self.mode == FOREGROUND and
                           pid != self._proc.pid):
            return False
        if not os.path.exists(self.anvil_path):
            return False
        for host in LOOPBACK:
            for port in (self.imap_port, self.pop3_port):
                try:
                    socket.create_connection((host, port), timeout=1).close()
                except OSError:
                    return False
        return True

    def stop(self):
        """Stops Dovecot (bounded), removes the temp dir and the mail user."""
        try:
            if self._master is not None or self._proc is not None:
                self._stop_master()
        finally:
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
            self._accounts.close()

    def reconfigure(self, anvil_group):
        """Gives the anvil socket to anvil_group (mode 0660) from the next
        restart() on, as an admin's edit of dovecot.conf would."""
        self.anvil_group = anvil_group
        self._write_conf()

    def restart(self, mode=None, how="doveadm"):
        """Stops the master and starts a fresh one with the same
        configuration and ports, as an admin would: `doveadm stop` (how
        "doveadm") or SIGTERM to the master (how "signal"), then a new
        start in mode (default: the current one). The new master has a
        new pid."""
        self._stop_master(how)
        if mode is not None:
            self.mode = mode
        if not self._launch(last=True):
            raise DovecotError("restart: a port was taken meanwhile")

    def _stop_master(self, how="signal"):
        """Stops the master, SIGKILL to what is left after a while.

        Every process of the instance must be gone before the mail user can
        be removed. Dovecot's processes are the master's children (its
        services do not fork further); they are noted before the master
        goes, since they are reparented after.
        """
        procs = {}
        if self._master is not None:
            procs = _children(self._master[0])
            procs[self._master[0]] = self._master[1]
        if how == "doveadm":
            self.doveadm("stop")
        elif self._master is not None and _running(*self._master):
            os.kill(self._master[0], signal.SIGTERM)
        elif self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

        def stopped():
            # poll() also reaps a foreground master.
            if self._proc is not None and self._proc.poll() is None:
                return False
            return not any(_running(p, t) for p, t in procs.items())

        if not wait_until(stopped, STOP_TIMEOUT):
            for pid, start_time in procs.items():
                if _running(pid, start_time):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if self._proc is not None:
                self._proc.kill()
            wait_until(stopped, STOP_TIMEOUT)
        self._proc = None
        self._master = None

    # Queries -------------------------------------------------------------

    def master_pid(self):
        """The running master's pid, as in base_dir/master.pid."""
        return self._master[0] if self._master else None

    def doveadm_argv(self, *args):
        """The argv that runs doveadm with args against this instance."""
        return [*self._program("doveadm"), "-c", self._inner(self.conf_path),
                *args]

    def doveadm(self, *args):
        """Runs doveadm against this instance."""
        return subprocess.run(self.doveadm_argv(*args), capture_output=True,
                              text=True, timeout=CMD_TIMEOUT, check=False)

    def who(self):
        """Parses `doveadm who -1` into a set of (user, service, pid, ip).

        Columns are space-padded, so the user name is what precedes the
        last three columns, without its trailing blanks.
        """
        res = self.doveadm("who", "-1")
        if res.returncode != 0:
            raise DovecotError(f"doveadm who -1 failed: {res.stderr}")
        lines = res.stdout.splitlines()
        if not lines or lines[0].split() != ["username", "proto", "pid",
                                             "ip"]:
            raise DovecotError(f"unexpected doveadm who -1 output: "
                               f"{res.stdout!r}")
        entries = set()
        for line in lines[1:]:
            user, service, pid, ip = line.rsplit(None, 3)
            entries.add((user, service, int(pid), ip))
        return entries

    def anvil_dump(self):
        """Asks anvil for CONNECT-DUMP; returns [(ident, pid, refcount)].

        ident is (service, ip, user), unescaped; ip is None when the ident
        has no second '/' and may be any text (as for doveadm, the user name
        is everything after the second '/'). This is what doveadm who and
        doveadm kick read.
        """
        with _anvil_connect(self.anvil_path) as s:
            s.sendall(b"VERSION\tanvil\t1\t0\nCONNECT-DUMP\n")
            data = _anvil_recv(s, b"", lambda d: d.endswith(b"\n\n") or
                               d == b"\n")
        result = []
        for line in data.decode("utf-8", "surrogateescape").split("\n"):
            if not line:
                break
            ident, pid, refcount = line.split("\t")
            parts = _anvil_unescape(ident).split("/", 2)
            if len(parts) == 2:
                parts.insert(1, None)
            result.append((tuple(parts), int(pid), int(refcount)))
        return result

    def log_tail(self, limit=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-limit:]
        except (OSError, TypeError):
            return ""

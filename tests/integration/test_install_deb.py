#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Installs, uses, upgrades and purges kickgate's Debian packages in a
fresh Debian 12 root (Dovecot 2.3) and a fresh Debian 13 root (Dovecot
2.4), following README's "Install" section step for step.

The packages are built once from the tree as it is (kgtest.debbuild:
dpkg-buildpackage -b in a copy, cached by the tree's digest). Each root
comes from tools/debian-root (minbase, Dovecot, cached; the trixie root
is the one the Dovecot 2.4 tests use) and each run works in a throwaway
overlay copy of it (kgtest.debroot.Overlay), so the cached root never
changes. In the copy:

- install: `apt install ./kickgate_*.deb ./kickgated_*.deb`, without
  network (every dependency is in the root already); the copy's
  usr/sbin/policy-rc.d keeps services from starting, and there is no
  systemd, so deb-systemd-helper's enable link is what shows the socket
  unit enabled;
- the files are where Debian puts them (programs, units, manuals,
  bash completion, conffile, docs and example, copyright), none setuid
  or writable by others; the accounts (_kickgate, _kickgate-broker,
  group kickgate) are system accounts that cannot log in;
- `kickgated -t` passes on the installed default configuration, and on
  the example once the groups it names exist;
- the README steps, timed: a helpdesk user alice (who exists before)
  joins group kickgate (`adduser alice kickgate`), a rule for the group
  is appended to /etc/kickgate/kickgated.conf, `kickgated -t` checks it,
  kickgated starts as the installed kickgated.service's ExecStartPre and
  ExecStart say (these roots have no systemd: the socket's directory is
  made as kickgated.socket's DirectoryMode says, and kickgated listens on
  its own, on the socket the unit names), and alice's `kickgate kick
  foo`, run as alice, ends foo's real IMAP session on the root's own
  Dovecot (which runs on loopback with its sockets in /run/dovecot, as
  Debian's does) while bar's stay; `kickgate who` as alice lists what
  is left, and a user outside the group is refused;
- a reload (README step 5: `kickgated -t`, then the unit's ExecReload):
  the rule narrowed to `users = foo` is in force at once in the running
  daemon (alice sees none of bar's sessions and cannot kick them), and
  put back, so is the old one;
- upgrade over itself (`apt install --reinstall` of the same packages):
  the edited conffile and the accounts are kept, the daemon starts again
  and serves;
- a broker without root, as README and README.Debian describe it:
  Dovecot's anvil socket given to group _kickgate-broker (in
  dovecot.conf, and Dovecot restarted), broker_user = _kickgate-broker
  (and on Dovecot 2.4, protocol = 2.4) in the [broker] section; the
  broker runs as that account, with CAP_KILL alone on 2.3 and no
  capability on 2.4, and alice's kick still ends exactly foo's session;
- purge: the accounts and every file the packages or their scripts made
  are gone. The copy's changed files (the overlay's upper layer) are
  compared with what they were before the install, except IGNORED.

The roots share the host's process table (their /proc is the host's),
and kickgated refuses a frontend account whose uid a running process
has: so the copy's /etc/adduser.conf hands out system ids from a range
no host account or process uses (the package's adduser calls take
theirs from it). The cached roots leave out manuals and docs (dpkg
path-exclude); the copy puts dpkg back to its defaults, as on any
Debian system, before the install.

lintian, pedantic and with informational tags, checks the packages
once, before the roots: nothing beyond the overrides debian/ justifies.

piuparts, Debian's own install and purge tester, then runs on the same
packages in another copy of each root (without /proc and the other
mounts, which piuparts copies with the tree otherwise): install and
purge, and install, remove, install again (the config-files-remaining
state). Offline: the copy's apt sources are an empty local repository,
and the docs the cached root leaves out stay out (debsums would report
them missing). Its check of the files left after a purge ignores
/var/cache/debconf/tmp.ci/, where apt's debconf preconfiguring extracts
templates (the root never ran it before); its "broken symlinks"
warnings are the base system's docs the root leaves out. It has no
upgrade from an older version to test here (none is in an archive);
the flow above upgrades over itself.

Needs root, dpkg-buildpackage with the build dependencies, and the
roots (a cold build downloads from Debian's archive): without them it
skips, and fails in CI.
"""

import contextlib
import hashlib
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
import types

from kgtest import confinement, debbuild, debroot, env
from kgtest.daemon import BROKER_RE
from kgtest.dovecot import DovecotError
from kgtest.dovecot24 import Dovecot24
from kgtest.runner import Runner, check
from kgtest.scenarios import expect_closed
from kgtest.sessions import ImapSession, Pop3Session, open_sessions

SOURCE = os.path.normpath(os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..", ".."))
# Suite -> the harness Dovecot that runs its root's Dovecot.
SUITES = {"bookworm": debroot.RootedDovecot, "trixie": Dovecot24}
PACKAGES = ("kickgate", "kickgated")
USERS = {"foo": "foo-pw", "bar": "bar-pw"}
SESSIONS = [
    (ImapSession, "foo", "127.0.0.2"),
    (ImapSession, "bar", "127.0.0.3"),
    (Pop3Session, "bar", "127.0.0.4"),
]
HELPDESK = "alice"
OUTSIDER = "mallory"
GROUP = "kickgate"
ACCOUNTS = ("_kickgate", "_kickgate-broker")
CONFIG = "/etc/kickgate/kickgated.conf"
EXAMPLE = "/usr/share/doc/kickgated/examples/kickgated.conf.example"
# The first rule, README's (and the installed file's commented one):
# members of group kickgate may see and kick everyone's sessions, at most
# 100 at a time and without -f.
RULE = f"""
[rule helpdesk]
principals = group:{GROUP}
force = no
max_sessions = 100
"""
EXCLUDES = "/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
UNIT_DIRS = ("/usr/lib/systemd/system", "/lib/systemd/system")
ENABLE_LINK = "/etc/systemd/system/sockets.target.wants/kickgated.socket"
# Where the packages go in the copy, as an admin's download directory.
DEB_DIR = "/var/tmp/kickgate-debs"
# Files each package must install (paths in the root); units are
# checked apart (either unit directory).
EXPECTED = {
    "kickgate": ["/usr/bin/kickgate", "/usr/share/man/man1/kickgate.1.gz",
                 "/usr/share/bash-completion/completions/kickgate",
                 "/usr/share/doc/kickgate/copyright"],
    "kickgated": ["/usr/sbin/kickgated", "/usr/share/man/man8/kickgated.8.gz",
                  "/usr/share/man/man5/kickgated.conf.5.gz", CONFIG,
                  "/usr/share/doc/kickgated/copyright"],
}
# Directories a package's files may be in (and their parents).
ALLOWED_DIRS = ("/usr", "/etc/kickgate", "/lib/systemd/system")
# Changed files the purge comparison leaves out, and why.
IGNORED = {
    "var/log/": "dpkg's and apt's logs of the install and the purge",
    "var/cache/apt/": "apt's package caches, rebuilt by every apt run",
    "var/cache/debconf/": "debconf's database and its -old copies, which "
                          "dpkg rewrites whenever it configures a package",
    "var/lib/dpkg/": "dpkg's own database: status, its backups, and the "
                     "records it keeps of every package it has seen",
    "var/lib/apt/": "apt's state (extended_states: which packages were "
                    "installed by hand)",
    "etc/passwd-": "the shadow tools' backup of the file before their last "
                   "change (the files themselves are compared)",
    "etc/group-": "as etc/passwd-",
    "etc/shadow-": "as etc/passwd-",
    "etc/gshadow-": "as etc/passwd-",
    "etc/subuid-": "as etc/passwd-",
    "etc/subgid-": "as etc/passwd-",
}
ACCOUNT_FILES = ("etc/passwd", "etc/group", "etc/shadow", "etc/gshadow")
CMD_TIMEOUT = 60
EXIT_NO_MATCH = 68
PIUPARTS_TIMEOUT = 600
LINTIAN_TIMEOUT = 300
# piuparts' runs: name -> options besides the common ones.
PIUPARTS_RUNS = {"install_purge": [],
                 "install_remove_install": ["--install-remove-install"]}
EMPTY_REPO = "/var/lib/kickgate-test-repo"
APT_TIMEOUT = 300
START_TIMEOUT = 15
STOP_TIMEOUT = 10
# System ids for the copy's adduser: the first free block of this size.
ID_BLOCK = 100
ID_BLOCK_STARTS = range(200, 1000, ID_BLOCK)
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "LC_ALL": "C.UTF-8", "TERM": "dumb",
       "DEBIAN_FRONTEND": "noninteractive"}
EXIT_CONFIG = 78
KICKED_HEADER = "kicked connections from the following users:\n"
KICKED_COUNT_RE = re.compile(r"(\d+) connections kicked\n")
AUDIT_RE = re.compile(r"^kickgated: audit: (.*)$", re.MULTILINE)


class StepFailed(Exception):
    pass


def step(name, *needs):
    """Marks a case as a step of the suite's flow: it runs only when the
    steps it needs passed, and records its own outcome."""
    def wrap(func):
        def case(st):
            missing = [n for n in needs if n not in st.passed]
            check(not missing, f"not run: {', '.join(missing)} failed")
            func(st)
            st.passed.add(name)
        return case
    return wrap


# Running things in the copy ---------------------------------------------

def in_root(st, *argv, user=None, cwd=None, stdin=None,
            timeout=CMD_TIMEOUT):
    """Runs argv in the copy (chroot), as root or as user (runuser: a
    fresh login's groups); returns the CompletedProcess."""
    cmd = ["chroot", st.ov.path]
    if cwd is not None:
        cmd += ["env", f"--chdir={cwd}"]
    if user is not None:
        cmd += ["runuser", "-u", user, "--"]
    return subprocess.run(cmd + list(argv), input=stdin, text=True,
                          capture_output=True, timeout=timeout, env=ENV,
                          check=False)


def must(res, what):
    check(res.returncode == 0, f"{what}: exit {res.returncode}\n"
                               f"{res.stdout[-3000:]}{res.stderr[-3000:]}")
    return res


def path(st, inner):
    return st.ov.inside(inner)


def read(st, inner):
    with open(path(st, inner)) as f:
        return f.read()


def entries(st, name):
    """{name: fields} of the copy's etc/NAME (passwd, group, shadow)."""
    found = {}
    for line in read(st, f"/etc/{name}").splitlines():
        fields = line.split(":")
        found[fields[0]] = fields
    return found


def timed(st, label, func):
    start = time.monotonic()
    try:
        return func()
    finally:
        st.timings.append((label, time.monotonic() - start))


# Preparing the copy ------------------------------------------------------

def _used_ids(st):
    """Uids and gids of the host's accounts and processes and of the
    copy's accounts."""
    uids = {p.pw_uid for p in pwd.getpwall()}
    gids = set()
    with open("/etc/group") as f:
        gids |= {int(line.split(":")[2]) for line in f if line.count(":") >= 3}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    for line in f:
                        if line.startswith(("Uid:", "Gid:")):
                            ids = {int(v) for v in line.split()[1:]}
                            (uids if line[0] == "U" else gids).update(ids)
            except OSError:
                pass
    uids |= {int(f[2]) for f in entries(st, "passwd").values()}
    gids |= {int(f[2]) for f in entries(st, "group").values()}
    return uids | gids


def prepare_copy(st):
    """dpkg back to its defaults; adduser's system ids from a block no
    host account or process uses."""
    excludes = path(st, EXCLUDES)
    if os.path.exists(excludes):
        os.unlink(excludes)
    used = _used_ids(st)
    first = next((b for b in ID_BLOCK_STARTS
                  if not used & set(range(b, b + ID_BLOCK))), None)
    if first is None:
        raise DovecotError("no free block of system ids for the copy")
    last = first + ID_BLOCK - 1
    with open(path(st, "/etc/adduser.conf"), "a") as f:
        f.write(f"\n# kickgate install test: ids no host account uses\n"
                f"FIRST_SYSTEM_UID={first}\nLAST_SYSTEM_UID={last}\n"
                f"FIRST_SYSTEM_GID={first}\nLAST_SYSTEM_GID={last}\n")
    st.system_ids = range(first, last + 1)


def place_debs(st):
    """The packages in DEB_DIR, as an admin downloads them."""
    os.mkdir(path(st, DEB_DIR), 0o755)
    st.deb_names = []
    for package in PACKAGES:
        name = os.path.basename(st.debs[package])
        shutil.copyfile(st.debs[package], path(st, f"{DEB_DIR}/{name}"))
        os.chmod(path(st, f"{DEB_DIR}/{name}"), 0o644)
        st.deb_names.append(f"./{name}")


def make_people(st):
    """The helpdesk user and one outside the group: people of the
    system, there before kickgate."""
    for name in (HELPDESK, OUTSIDER):
        must(in_root(st, "useradd", "--no-create-home", "--shell",
                     "/bin/sh", name), f"useradd {name}")


def remove_people(st):
    for name in (HELPDESK, OUTSIDER):
        if name in entries(st, "passwd"):
            must(in_root(st, "userdel", name), f"userdel {name}")


# The copy's file state ----------------------------------------------------

def _ignored(rel):
    return any(rel == key or (key.endswith("/") and rel.startswith(key))
               for key in IGNORED)


def _state(full):
    """(kind, mode, uid, gid, content digest or link target) of a path,
    None when there is none."""
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return None
    extra = None
    if stat.S_ISREG(st.st_mode):
        with open(full, "rb") as f:
            extra = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        extra = os.readlink(full)
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
            st.st_gid, extra)


def _changed_paths(st):
    """Paths (relative) the overlay's upper layer holds: every path that
    was written, made or removed (a whiteout) since the copy was made,
    and everything beneath an opaque directory (one made anew)."""
    upper = os.path.join(st.ov.tmp, "upper")
    found = set()
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, upper)
            found.add(rel)
            if name in dirnames:
                try:
                    opaque = os.getxattr(full, "trusted.overlay.opaque")
                except OSError:
                    opaque = b""
                if opaque == b"y":
                    lower = os.path.join(st.ov.lower, rel)
                    for ldir, ldirs, lfiles in os.walk(lower):
                        found |= {os.path.relpath(os.path.join(ldir, n),
                                                  st.ov.lower)
                                  for n in ldirs + lfiles}
    return {p for p in found if not _ignored(p)}


def snapshot(st):
    return {rel: _state(os.path.join(st.ov.path, rel))
            for rel in _changed_paths(st)}


def differences(st, before):
    """What differs now from the snapshot before: a path not changed
    then was as in the cached root."""
    now = snapshot(st)
    diffs = []
    for rel in sorted(set(before) | set(now)):
        was = before[rel] if rel in before \
            else _state(os.path.join(st.ov.lower, rel))
        new = now[rel] if rel in now \
            else _state(os.path.join(st.ov.path, rel))
        if was != new:
            what = ("left behind" if was is None else
                    "removed" if new is None else "changed")
            diffs.append(f"/{rel}: {what} ({was} -> {new})")
    return diffs


# The installed daemon ---------------------------------------------------

def unit_path(st, name):
    for d in UNIT_DIRS:
        if os.path.isfile(path(st, f"{d}/{name}")):
            return f"{d}/{name}"
    return None


def unit_settings(st, name):
    """{key: [values]} of an installed unit file."""
    settings = {}
    for line in read(st, unit_path(st, name)).splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition("=")
        check(sep, f"{name}: line {line!r}")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def exec_argv(value):
    """A unit's Exec*= value as argv: systemd's prefixes (-, @, :, +, !)
    are refused rather than guessed at; specifiers and variables too."""
    check(value[:1] not in "-@:+!" and "%" not in value and "$" not in
          value, f"Exec line {value!r}: prefix or expansion not handled")
    return shlex.split(value)


class InstalledDaemon:
    """The installed kickgated, started in the copy as kickgated.service
    starts it: each ExecStartPre, then ExecStart in the foreground with
    the unit's UMask; stderr (its log and audit lines: the copy has no
    syslog socket) in a file outside the copy."""

    def __init__(self, st):
        self.st = st
        self.proc = None
        self.log_path = os.path.join(st.ov.tmp, f"kickgated.{id(self)}.log")

    def start(self):
        st = self.st
        service = unit_settings(st, "kickgated.service")
        socket_unit = unit_settings(st, "kickgated.socket")
        listen = socket_unit["ListenSequentialPacket"]
        check(len(listen) == 1, f"kickgated.socket listens on {listen}")
        self.sock = listen[0]
        # What kickgated.socket's DirectoryMode makes before the service
        # ever runs.
        mode = int(socket_unit.get("DirectoryMode", ["0755"])[-1], 8)
        os.makedirs(path(st, os.path.dirname(self.sock)), mode,
                    exist_ok=True)
        for value in service.get("ExecStartPre", []):
            must(in_root(st, *exec_argv(value)), f"ExecStartPre {value}")
        starts = service.get("ExecStart", [])
        check(len(starts) == 1, f"ExecStart {starts}")
        umask = int(service.get("UMask", ["0022"])[-1], 8)
        argv = ["chroot", st.ov.path, *exec_argv(starts[0])]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=ENV, preexec_fn=lambda: os.umask(umask))
        up = env.wait_until(lambda: self.proc.poll() is not None or
                            (BROKER_RE.search(self.log()) and
                             os.path.exists(path(st, self.sock))),
                            START_TIMEOUT)
        check(self.proc.poll() is None and up,
              f"kickgated ({' '.join(argv)}) not listening: exit "
              f"{self.proc.poll()}, log {self.log()!r}")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def audits(self):
        return AUDIT_RE.findall(self.log())

    def stop(self):
        """SIGTERM to the supervisor, as systemd stops it; every
        kickgated process in the copy must be gone soon after."""
        if self.proc is None:
            return
        env.stop_process(self.proc, STOP_TIMEOUT)
        self.proc = None
        left = env.wait_until(lambda: not self._running(), STOP_TIMEOUT)
        check(left, f"kickgated processes outlived the supervisor: "
                    f"{self._running()}")

    def _running(self):
        pids = []
        for pid in debroot._pids_rooted_in(self.st.ov.path):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "kickgated":
                        pids.append(pid)
            except OSError:
                pass
        return pids


def kickgate(st, *args, user=HELPDESK):
    """The installed kickgate, run by user in the copy."""
    return in_root(st, "kickgate", *args, user=user)


# Steps -------------------------------------------------------------------

@step("install")
def case_install(st):
    res = timed(st, "apt install", lambda: in_root(
        st, "apt", "install", "-y", *st.deb_names, cwd=DEB_DIR,
        timeout=APT_TIMEOUT))
    must(res, "apt install " + " ".join(st.deb_names))
    for package in PACKAGES:
        res = in_root(st, "dpkg-query", "-W", "-f=${Status}", package)
        check(res.stdout == "install ok installed",
              f"{package}: {res.stdout!r} {res.stderr!r}")


@step("files", "install")
def case_files(st):
    for package in PACKAGES:
        listed = set(must(in_root(st, "dpkg", "-L", package),
                          f"dpkg -L {package}").stdout.splitlines())
        for inner in EXPECTED[package]:
            check(inner in listed and os.path.isfile(path(st, inner)),
                  f"{package}: {inner} not installed")
        for inner in listed - {"/."}:
            check(any((inner + "/").startswith(d + "/") or
                      (d + "/").startswith(inner + "/")
                      for d in ALLOWED_DIRS),
                  f"{package}: {inner} outside {ALLOWED_DIRS}")
            info = os.lstat(path(st, inner))
            # A symbolic link's own mode is always 0777 (merged /usr's
            # /lib is one).
            bad = stat.S_ISUID | stat.S_ISGID | (
                0 if stat.S_ISLNK(info.st_mode) else stat.S_IWOTH)
            check(info.st_uid == 0 and info.st_gid == 0 and
                  not info.st_mode & bad,
                  f"{package}: {inner} uid {info.st_uid} gid "
                  f"{info.st_gid} mode {info.st_mode:o}")
    for name in ("kickgated.service", "kickgated.socket"):
        check(unit_path(st, name), f"{name} not in {UNIT_DIRS}")
    example = [p for p in (EXAMPLE, EXAMPLE + ".gz")
               if os.path.isfile(path(st, p))]
    check(example, f"{EXAMPLE} not installed")
    conffiles = must(in_root(st, "dpkg-query", "-W", "-f=${Conffiles}",
                             "kickgated"), "conffiles").stdout.split()
    check(CONFIG in conffiles, f"{CONFIG} not a conffile: {conffiles}")
    digest = conffiles[conffiles.index(CONFIG) + 1]
    with open(path(st, CONFIG), "rb") as f:
        check(hashlib.md5(f.read()).hexdigest() == digest,
              f"{CONFIG} differs from the package's")


@step("accounts", "install")
def case_accounts(st):
    passwd, shadow, group = (entries(st, n)
                             for n in ("passwd", "shadow", "group"))
    for name in ACCOUNTS:
        check(name in passwd, f"no account {name}")
        fields = passwd[name]
        check(int(fields[2]) in st.system_ids,
              f"{name}: uid {fields[2]} not a system uid "
              f"({st.system_ids})")
        check(fields[6] in ("/usr/sbin/nologin", "/bin/false"),
              f"{name}: shell {fields[6]}")
        check(shadow[name][1][:1] in ("*", "!"),
              f"{name}: password field {shadow[name][1]!r}")
    check(GROUP in group and int(group[GROUP][2]) in st.system_ids,
          f"group {GROUP}: {group.get(GROUP)}")
    check(group[GROUP][3] == "", f"group {GROUP} has members at install: "
                                 f"{group[GROUP][3]}")
    st.accounts = {n: passwd[n] for n in ACCOUNTS}
    st.group_entry = group[GROUP]


@step("enabled", "install")
def case_socket_enabled(st):
    link = path(st, ENABLE_LINK)
    check(os.path.islink(link), f"{ENABLE_LINK} missing: the socket is "
                                "not enabled")
    target = os.readlink(link)
    check(target in [f"{d}/kickgated.socket" for d in UNIT_DIRS],
          f"{ENABLE_LINK} -> {target}")


@step("default_config", "install")
def case_default_config(st):
    must(in_root(st, "kickgated", "-t"), "kickgated -t on the default")
    text = read(st, CONFIG)
    active = [line for line in text.splitlines()
              if line.strip() and not line.lstrip().startswith((";", "#"))]
    check(not any(line.lstrip().startswith("[rule") for line in active),
          f"the default configuration has a rule: {active}")
    check(re.search(rf"^[#;]\s*principals\s*=.*group:{GROUP}\b", text,
                    re.MULTILINE),
          f"no commented rule for group {GROUP} in {CONFIG}")


@step("example_config", "install")
def case_example_config(st):
    """The example passes once the groups and users it names exist."""
    name = EXAMPLE if os.path.isfile(path(st, EXAMPLE)) else EXAMPLE + ".gz"
    work = "/tmp/kickgated.conf.example"
    if name.endswith(".gz"):
        res = must(in_root(st, "zcat", name), f"zcat {name}")
        with open(path(st, work), "w") as f:
            f.write(res.stdout)
    else:
        shutil.copyfile(path(st, name), path(st, work))
    text = read(st, work)
    made = []
    try:
        for kind, who in re.findall(r"\b(group|user):([A-Za-z0-9_.-]+)",
                                    text):
            table = "group" if kind == "group" else "passwd"
            if who in entries(st, table) or (kind, who) in made:
                continue
            tool = "groupadd" if kind == "group" else "useradd"
            must(in_root(st, tool, "--system", who), f"{tool} {who}")
            made.append((kind, who))
        must(in_root(st, "kickgated", "-t", "-c", work),
             f"kickgated -t -c {name}")
    finally:
        for kind, who in reversed(made):
            tool = "groupdel" if kind == "group" else "userdel"
            must(in_root(st, tool, who), f"{tool} {who}")
        os.unlink(path(st, work))


@step("kick", "install", "accounts")
def case_kick(st):
    """README's steps after the install, timed, then the results."""
    sessions = open_sessions(st.dovecot, SESSIONS)
    st.sessions = sessions
    must(timed(st, "adduser", lambda: in_root(st, "adduser", HELPDESK,
                                              GROUP)),
         f"adduser {HELPDESK} {GROUP}")
    must(timed(st, "first rule", lambda: in_root(
        st, "sh", "-c", f"cat >> {CONFIG}", stdin=RULE)), "append the rule")
    must(timed(st, "kickgated -t", lambda: in_root(st, "kickgated", "-t")),
         "kickgated -t with the rule")
    st.daemon = InstalledDaemon(st)
    timed(st, "start", st.daemon.start)
    res = timed(st, "kickgate kick", lambda: kickgate(st, "kick", "foo"))
    total = sum(seconds for _label, seconds in st.timings)
    print(f"{st.suite}: install to kick {total:.1f} s (" +
          ", ".join(f"{label} {seconds:.1f} s"
                    for label, seconds in st.timings) + ")", flush=True)
    check_kicked(st, res, "foo", 1)
    gone = [s for s in sessions if s.user == "foo"]
    st.sessions = expect_closed(sessions, gone)
    uid = entries(st, "passwd")[HELPDESK][2]
    audits = [a for a in st.daemon.audits() if f" uid={uid} " in f" {a} "]
    check(len(audits) == 1 and "outcome=kicked" in audits[0],
          f"audit lines of {HELPDESK} (uid {uid}): {audits}")


def check_kicked(st, res, user, conns):
    """The kick's reply as Dovecot 2.3 or 2.4 words it."""
    want = KICKED_HEADER + f"{user}\n"
    if st.dovecot.version.startswith("2.4"):
        want = f"{conns} connections kicked\n" + want
    check((res.returncode, res.stdout, res.stderr) == (0, want, ""),
          f"kickgate kick {user}: exit {res.returncode}, stdout "
          f"{res.stdout!r}, stderr {res.stderr!r}; expected {want!r}")


def who1(st, res):
    """kickgate who -1's rows as (user, service, pid, ip), and doveadm
    who -1's on the same Dovecot."""
    check(res.returncode == 0 and res.stderr == "",
          f"who -1: exit {res.returncode}, stderr {res.stderr!r}")
    lines = res.stdout.splitlines()
    check(lines and lines[0].split(" ")[:4] in
          (["username", "proto", "pid", "ip"],
           ["username", "service", "pid", "ip"]),
          f"who -1 header {lines[:1]}")
    got = {tuple(line.split(" ")[:4]) for line in lines[1:]}
    got = {(u, s, int(p), ip) for u, s, p, ip in got}
    return got, st.dovecot.who()


@step("who", "kick")
def case_who(st):
    res = kickgate(st, "who", "-1")
    check(res.returncode == 0, f"who -1: exit {res.returncode}, "
                               f"{res.stderr!r}; kickgated's log:\n"
                               f"{st.daemon.log()[-3000:]}")
    got, want = who1(st, res)
    check(got == want and {u for u, *_ in got} == {"bar"},
          f"kickgate who -1 as {HELPDESK}: {sorted(got)}; doveadm who -1: "
          f"{sorted(want)}")


@step("outsider", "kick")
def case_outsider(st):
    res = kickgate(st, "kick", "bar", user=OUTSIDER)
    check(res.returncode != 0 and "kicked" not in res.stdout,
          f"{OUTSIDER} (not in {GROUP}): exit {res.returncode}, "
          f"{res.stdout!r} {res.stderr!r}")
    st.sessions = expect_closed(st.sessions, [])


def reload_daemon(st):
    """README's `kickgated -t && systemctl reload kickgated`: the check,
    then the unit's ExecReload with $MAINPID, the supervisor's pid (chroot
    execs kickgated in its place); True when the log says reloaded."""
    must(in_root(st, "kickgated", "-t"), "kickgated -t before the reload")
    reloads = unit_settings(st, "kickgated.service").get("ExecReload", [])
    check(reloads == ["/bin/kill -HUP $MAINPID"], f"ExecReload {reloads}")
    done = st.daemon.log().count("reloaded ")
    argv = shlex.split(reloads[0].replace("$MAINPID",
                                          str(st.daemon.proc.pid)))
    must(subprocess.run(argv, capture_output=True, text=True,
                        timeout=CMD_TIMEOUT, check=False), "ExecReload")
    return env.wait_until(lambda: st.daemon.log().count("reloaded ") > done,
                          START_TIMEOUT)


@step("reload", "kick")
def case_reload(st):
    """After an edit, a reload (README step 5) puts the new rule in force
    in the running daemon: narrowed to foo's sessions, alice sees none of
    bar's and cannot kick them; put back, she sees them again."""
    before = read(st, CONFIG)
    check(before.endswith(RULE), f"{CONFIG} does not end with the rule")
    with open(path(st, CONFIG), "w") as f:
        f.write(before + "users = foo\n")
    try:
        check(reload_daemon(st), f"no reload: {st.daemon.log()[-2000:]}")
        res = kickgate(st, "who", "-1")
        got, _want = who1(st, res)
        check(got == set(), f"who -1 under users = foo: {sorted(got)}")
        res = kickgate(st, "kick", "bar")
        check(res.returncode == EXIT_NO_MATCH,
              f"kick bar under users = foo: exit {res.returncode}, "
              f"{res.stdout!r} {res.stderr!r}")
        st.sessions = expect_closed(st.sessions, [])
    finally:
        with open(path(st, CONFIG), "w") as f:
            f.write(before)
    check(reload_daemon(st), f"no reload: {st.daemon.log()[-2000:]}")
    got, want = who1(st, kickgate(st, "who", "-1"))
    check(got == want and {u for u, *_ in got} == {"bar"},
          f"who -1 after the rule came back: {sorted(got)}")


@step("reinstall", "kick")
def case_reinstall(st):
    st.daemon.stop()
    before = read(st, CONFIG)
    must(in_root(st, "apt", "install", "--reinstall", "-y", *st.deb_names,
                 cwd=DEB_DIR, timeout=APT_TIMEOUT), "apt install --reinstall")
    check(read(st, CONFIG) == before, f"{CONFIG} changed by the upgrade")
    strays = [n for n in os.listdir(path(st, os.path.dirname(CONFIG)))
              if n != os.path.basename(CONFIG)]
    check(not strays, f"beside {CONFIG}: {strays}")
    passwd, group = entries(st, "passwd"), entries(st, "group")
    check({n: passwd.get(n) for n in ACCOUNTS} == st.accounts,
          f"accounts {st.accounts} -> "
          f"{ {n: passwd.get(n) for n in ACCOUNTS} }")
    check(group[GROUP][:3] == st.group_entry[:3] and
          group[GROUP][3].split(",") == [HELPDESK],
          f"group {GROUP}: {st.group_entry} -> {group[GROUP]}")
    check(os.path.islink(path(st, ENABLE_LINK)), "socket no longer enabled")
    st.daemon = InstalledDaemon(st)
    st.daemon.start()
    res = kickgate(st, "kick", "bar")
    check_kicked(st, res, "bar", 2)
    st.sessions = expect_closed(st.sessions, st.sessions)
    st.daemon.stop()


@step("nonroot_broker", "kick")
def case_nonroot_broker(st):
    """README's broker without root on the same Dovecot."""
    broker = ACCOUNTS[1]
    st.dovecot.reconfigure(anvil_group=broker)
    st.dovecot.restart()
    text = read(st, CONFIG)
    line = re.search(r"^broker_user = root\b.*$", text, re.MULTILINE)
    check(line, f"no 'broker_user = root' line in {CONFIG}")
    setting = f"broker_user = {broker}"
    if st.dovecot.version.startswith("2.4"):
        setting += "\nprotocol = 2.4"
    with open(path(st, CONFIG), "w") as f:
        f.write(text[:line.start()] + setting + text[line.end():])
    must(in_root(st, "kickgated", "-t"), f"kickgated -t with {setting!r}")
    sessions = open_sessions(st.dovecot, SESSIONS)
    try:
        st.daemon = InstalledDaemon(st)
        st.daemon.start()
        pid = int(BROKER_RE.findall(st.daemon.log())[-1])
        confinement.wait_filtered([pid])
        account = entries(st, "passwd")[broker]
        caps = (confinement.ANVIL_KICKS_CAPS
                if st.dovecot.version.startswith("2.4")
                else (confinement.CAP_KILL,))
        problems = confinement.check_broker(pid, int(account[2]),
                                            int(account[3]), caps=caps)
        check(not problems, f"broker as {broker}: {problems}")
        res = kickgate(st, "kick", "foo")
        check_kicked(st, res, "foo", 1)
        expect_closed(sessions, [s for s in sessions if s.user == "foo"])
        st.daemon.stop()
    finally:
        for s in sessions:
            s.close()


@step("purge", "install")
def case_purge(st):
    if st.daemon is not None:
        st.daemon.stop()
    st.dovecot.stop()
    remove_people(st)
    shutil.rmtree(path(st, DEB_DIR))
    must(in_root(st, "apt", "purge", "-y", *PACKAGES, timeout=APT_TIMEOUT),
         "apt purge")
    for package in PACKAGES:
        res = in_root(st, "dpkg-query", "-W", "-f=${Status}", package)
        check(res.returncode != 0 or "not-installed" in res.stdout,
              f"{package} after purge: {res.stdout!r}")
    diffs = differences(st, st.before)
    for rel in ACCOUNT_FILES:
        now = read(st, f"/{rel}").splitlines()
        was = st.before_accounts[rel]
        check(now == was, f"/{rel}: lines gone "
                          f"{sorted(set(was) - set(now))}, lines left "
                          f"{sorted(set(now) - set(was))}")
    check(not diffs, "after purge:\n" + "\n".join(diffs))


CASES = [
    ("install_with_apt", case_install),
    ("files_where_debian_puts_them", case_files),
    ("accounts_are_system_accounts", case_accounts),
    ("socket_unit_enabled", case_socket_enabled),
    ("default_config_passes_check", case_default_config),
    ("example_config_passes_check", case_example_config),
    ("helpdesk_kicks_through_installed_daemon", case_kick),
    ("helpdesk_who_lists_the_rest", case_who),
    ("user_outside_the_group_refused", case_outsider),
    ("reload_puts_an_edit_in_force", case_reload),
    ("reinstall_keeps_config_and_accounts", case_reinstall),
    ("broker_without_root", case_nonroot_broker),
    ("purge_leaves_nothing", case_purge),
]


def lintian_case(st):
    """lintian, pedantic and with informational tags, finds nothing in
    the packages (debug symbol packages included) beyond the overrides
    debian/ justifies."""
    build_dir = os.path.dirname(st.debs[PACKAGES[0]])
    debs = sorted(os.path.join(build_dir, n) for n in os.listdir(build_dir)
                  if n.endswith(".deb"))
    res = subprocess.run(["lintian", "-I", "-E", "--pedantic", "--fail-on",
                          "error,warning", *debs], capture_output=True,
                         text=True, timeout=LINTIAN_TIMEOUT, check=False)
    tags = [line for line in res.stdout.splitlines()
            if re.match(r"[EWIPX]: ", line)]
    check(res.returncode == 0 and not tags,
          f"lintian exit {res.returncode} on {len(debs)} packages:\n" +
          "\n".join(tags or [res.stdout[-2000:], res.stderr[-2000:]]))


def lintian_fixture(debs):
    @contextlib.contextmanager
    def make():
        yield types.SimpleNamespace(debs=debs)
    return make


def piuparts_case(options):
    def case(st):
        argv = ["piuparts", "-d", st.suite, "--existing-chroot", st.ov.path,
                "--keep-sources-list", "--no-upgrade-test",
                "-i", "/var/cache/debconf/tmp.ci/", *options,
                *(st.debs[p] for p in PACKAGES)]
        start = time.monotonic()
        res = subprocess.run(argv, capture_output=True, text=True,
                             timeout=PIUPARTS_TIMEOUT, env=dict(
                                 os.environ, TMPDIR=st.ov.tmp), check=False)
        out = res.stdout + res.stderr
        print(f"{st.suite}: piuparts {' '.join(options) or '(defaults)'}: "
              f"{time.monotonic() - start:.0f} s", flush=True)
        failures = [line for line in out.splitlines()
                    if ("FAIL" in line or "ERROR" in line) and
                    "Broken symlinks" not in line]
        check(res.returncode == 0 and "PASS: All tests." in out,
              f"piuparts exit {res.returncode}:\n" +
              "\n".join(failures[-40:]) + "\n" + out[-2000:])
    return case


def piuparts_fixture(suite, debs):
    """A copy of the root without system mounts, whose apt sources are
    an empty local repository."""
    @contextlib.contextmanager
    def make():
        with debroot.Overlay(debroot.build_root(suite),
                             system_mounts=False) as ov:
            repo = ov.inside(EMPTY_REPO)
            os.makedirs(repo)
            open(os.path.join(repo, "Packages"), "w").close()
            with open(ov.inside("/etc/apt/sources.list"), "w") as f:
                f.write(f"deb [trusted=yes] file:{EMPTY_REPO} ./\n")
            sources = ov.inside("/etc/apt/sources.list.d")
            for name in os.listdir(sources):
                os.unlink(os.path.join(sources, name))
            yield types.SimpleNamespace(suite=suite, debs=debs, ov=ov)
    return make


def fixture(suite, debs):
    @contextlib.contextmanager
    def make():
        with contextlib.ExitStack() as stack:
            st = types.SimpleNamespace(suite=suite, debs=debs, timings=[],
                                       passed=set(), daemon=None)
            st.ov = stack.enter_context(
                debroot.Overlay(debroot.build_root(suite)))
            prepare_copy(st)
            st.before = snapshot(st)
            st.before_accounts = {rel: read(st, f"/{rel}").splitlines()
                                  for rel in ACCOUNT_FILES}
            make_people(st)
            place_debs(st)
            st.dovecot = stack.enter_context(SUITES[suite](
                USERS, root=st.ov.path, base_dir="/run/dovecot"))
            stack.callback(lambda: st.daemon and st.daemon.stop())
            yield st
    return make


def suite_cases(suite):
    return [(f"{suite}_{name}", func) for name, func in CASES]


def main():
    env.require_root()
    for tool in ("dpkg-buildpackage", "dh", "git", "mount", "piuparts",
                 "lintian"):
        if shutil.which(tool) is None:
            env.skip_or_fail(f"'{tool}' not found (tools/install-deps "
                             "installs what the package build needs)")
    try:
        debs, digest, seconds = debbuild.build(SOURCE)
    except FileNotFoundError as err:
        env.skip_or_fail(str(err))
    except (debbuild.BuildError, OSError,
            subprocess.TimeoutExpired) as err:
        print(f"FAIL package build: {err}", flush=True)
        sys.exit(1)
    missing = [p for p in PACKAGES if p not in debs]
    if missing:
        print(f"FAIL package build: no {missing} among {debs}", flush=True)
        sys.exit(1)
    print(f"packages {digest[:12]} "
          f"({'built in %.0f s' % seconds if seconds else 'cached'}): " +
          " ".join(os.path.basename(debs[p]) for p in PACKAGES), flush=True)
    roots = {}
    for suite in SUITES:
        try:
            roots[suite] = debroot.build_root(suite)
        except DovecotError as err:
            env.skip_or_fail(f"no Debian {suite} root: {err}")
    runner = Runner()
    runner.group([("lintian", lintian_case)], lintian_fixture(debs))
    for suite in SUITES:
        runner.group(suite_cases(suite), fixture(suite, debs))
        runner.group([(f"{suite}_piuparts_{name}", piuparts_case(options))
                      for name, options in PIUPARTS_RUNS.items()],
                     piuparts_fixture(suite, debs))
    sys.exit(runner.finish())


if __name__ == "__main__":
    main()

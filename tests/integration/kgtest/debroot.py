# SPDX-License-Identifier: MIT
"""Minimal Debian roots (tools/debian-root), a Dovecot chrooted into one,
and throwaway copies of a root.

tools/debian-root builds a root per suite once (bookworm: Dovecot 2.3,
trixie: Dovecot 2.4) and caches it outside the source tree. A Dovecot of
the harness (kgtest.dovecot) runs chrooted into it: `chroot ROOT
/usr/sbin/dovecot -c CONF`, with /proc mounted inside for as long as the
instance lives. Its temp dir (configuration, passwd-file, state, log,
mail) is ROOT/tmp/kgd...: Dovecot sees it as /tmp/kgd..., the host (and
so the tests) as ROOT/tmp/kgd...; the paths of these classes are host
paths, as in kgtest.dovecot. Rooted holds what differs from a Dovecot on
the host; RootedDovecot is the 2.3 harness so (kgtest.dovecot24 has the
2.4 one).

Dovecot resolves the names in its configuration inside the root, so a
host group given the anvil socket (anvil_group) is added to the root's
/etc/group with the host's gid for as long as the instance lives
(groupadd --root; --non-unique, since the root's own system groups may
hold that gid); a group the root has already is used as it is.

Overlay is a copy of a cached root that costs nothing and is thrown away:
an overlayfs mount (the cached root below, an upper and a work directory
in a temp dir), with proc, a /dev of the basic devices and a tmpfs on
/run mounted inside. Leaving it kills what still runs in it, unmounts everything and
removes the temp dir; it never writes to the cached root.
"""

import atexit
import collections
import fcntl
import glob
import grp
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

from kgtest.dovecot import (CMD_TIMEOUT, INTERNAL_USER, DovecotError,
                            Dovecot)
from kgtest.env import Service, wait_until

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                    "..", "tools", "debian-root")
SUITES = ("bookworm", "trixie")
# A cold build downloads and unpacks about 100 packages.
ROOT_BUILD_TIMEOUT = 900
VERSION_RE = re.compile(r"(\d+\.\d+\.\d+)")
# How long a cached root's lock is waited for (a rebuild by another run).
LOCK_TIMEOUT = 900
OVERLAY_PREFIX = "kgov"
KILL_TIMEOUT = 10
# A copy's /dev: name -> (major, minor) of a character device, mode 0666.
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7),
           "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}


def build_root(suite):
    """Builds or reuses the root of suite (tools/debian-root); returns its
    path. Raises DovecotError when it cannot be had."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}")
    try:
        res = subprocess.run([TOOL, suite], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True,
                             timeout=ROOT_BUILD_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DovecotError(f"debian-root {suite}: {err}") from err
    lines = res.stdout.splitlines()
    if res.returncode != 0 or not lines or not os.path.isdir(lines[-1]):
        raise DovecotError(f"debian-root {suite} failed ({res.returncode}): "
                           f"{res.stderr.strip()[-2000:]}")
    return lines[-1]


def group_gid(group_file, name):
    with open(group_file) as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if len(fields) >= 3 and fields[0] == name:
                return int(fields[2])
    raise DovecotError(f"no group {name} in {group_file}")


def _has_group(root, name):
    try:
        group_gid(os.path.join(root, "etc", "group"), name)
    except DovecotError:
        return False
    return True


def run_in_root(root, *argv):
    """A shadow tool (groupadd, groupdel, ...) on root's account files."""
    res = subprocess.run([argv[0], "--root", root, *argv[1:]],
                         capture_output=True, text=True,
                         timeout=CMD_TIMEOUT, check=False)
    if res.returncode != 0:
        raise DovecotError(f"{' '.join(argv)} in {root} failed "
                           f"({res.returncode}): {res.stderr.strip()}")


class _RootGroups:
    """Host groups entered in roots' /etc/group (same name and gid) for
    as long as some instance uses them: the first hold() adds one, the
    last release() removes it; whatever is held at exit goes then."""

    def __init__(self):
        self._held = collections.Counter()  # (root, name) -> holders
        atexit.register(self._release_all)

    def hold(self, root, name):
        if not self._held[(root, name)]:
            gid = grp.getgrnam(name).gr_gid
            run_in_root(root, "groupadd", "--non-unique", "--gid",
                        str(gid), name)
        self._held[(root, name)] += 1

    def release(self, root, name):
        self._held[(root, name)] -= 1
        if not self._held[(root, name)]:
            del self._held[(root, name)]
            run_in_root(root, "groupdel", name)

    def _release_all(self):
        for root, name in list(self._held):
            try:
                run_in_root(root, "groupdel", name)
            except DovecotError as err:
                print(f"cleanup: {err}", file=sys.stderr, flush=True)
        self._held.clear()


_ROOT_GROUPS = _RootGroups()


class Rooted:
    """What a Dovecot harness class needs to run chrooted into a root:
    mix in before kgtest.dovecot.Dovecot. root: the root (default: SUITE's,
    which tools/debian-root builds or reuses at start). base_dir: where
    Dovecot keeps its sockets, as the root sees it (default: in the temp
    dir), such as /run/dovecot, Debian's default."""

    SUITE = None

    def __init__(self, *args, root=None, base_dir=None, **kwargs):
        super().__init__(*args, **kwargs)
        if base_dir is not None and not os.path.isabs(base_dir):
            raise ValueError(f"base_dir must be absolute: {base_dir!r}")
        self.root = root
        self._base_dir_inside = base_dir
        self.version = None  # as `dovecot --version` prints it
        self._config_version = None  # its x.y.z
        self._proc_mounted = False
        self._root_group = None  # (root, name) while held

    @property
    def base_dir(self):
        if self._base_dir_inside is None:
            return super().base_dir
        return os.path.join(self.root, self._base_dir_inside.lstrip("/"))

    @property
    def proc_path(self):
        return os.path.join(self.root, "proc")

    def _prepare(self):
        if self.root is None:
            self.root = build_root(self.SUITE)
        self._mount_proc()
        res = subprocess.run([*self._program("dovecot"), "--version"],
                             capture_output=True, text=True,
                             timeout=CMD_TIMEOUT, check=False)
        m = VERSION_RE.match(res.stdout.strip())
        if res.returncode != 0 or not m:
            raise DovecotError(f"dovecot --version: {res.stdout!r} "
                               f"{res.stderr!r}")
        self.version = res.stdout.strip()
        self._config_version = m.group(1)
        if self.anvil_group is not None and not _has_group(
                self.root, self.anvil_group):
            _ROOT_GROUPS.hold(self.root, self.anvil_group)
            self._root_group = (self.root, self.anvil_group)
        super()._prepare()

    def _mount_proc(self):
        """Mounts a proc file system on ROOT/proc, stacked on any that is
        there already: each instance unmounts one again, so instances may
        overlap."""
        res = subprocess.run(["mount", "-t", "proc", "proc", self.proc_path],
                             capture_output=True, text=True,
                             timeout=CMD_TIMEOUT, check=False)
        if res.returncode != 0:
            raise DovecotError(f"mount proc on {self.proc_path}: "
                               f"{res.stderr}")
        self._proc_mounted = True

    def _unmount_proc(self):
        if not self._proc_mounted:
            return
        res = subprocess.run(["umount", self.proc_path], capture_output=True,
                             text=True, timeout=CMD_TIMEOUT, check=False)
        if res.returncode != 0:
            raise DovecotError(f"umount {self.proc_path}: {res.stderr}")
        self._proc_mounted = False

    def stop(self):
        try:
            super().stop()
        finally:
            try:
                if self._root_group is not None:
                    group, self._root_group = self._root_group, None
                    _ROOT_GROUPS.release(*group)
            finally:
                self._unmount_proc()

    # The root's view ---------------------------------------------------

    def _temp_parent(self):
        return os.path.join(self.root, "tmp")

    def _inner(self, path):
        return "/" + os.path.relpath(path, self.root)

    def _program(self, name):
        sbin = "sbin" if name == "dovecot" else "bin"
        return ["chroot", self.root, f"/usr/{sbin}/{name}"]

    def _internal_gid(self):
        return group_gid(os.path.join(self.root, "etc", "group"),
                         INTERNAL_USER)


class RootedDovecot(Rooted, Dovecot):
    """A private Dovecot 2.3 from the bookworm root, configured as
    kgtest.dovecot.Dovecot configures one on the host; use as a context
    manager. Arguments as for Dovecot, and Rooted's."""

    SUITE = "bookworm"


def _mounts_under(path):
    """Mount points at or below path, deepest first (from
    /proc/self/mountinfo, whose fields escape blanks as octal)."""
    found = []
    prefix = path.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)),
                            line.split()[4])
            if target == path or target.startswith(prefix):
                found.append(target)
    return sorted(found, key=len, reverse=True)


def _pids_rooted_in(path):
    """Pids of the processes whose root directory is path or below it."""
    pids = []
    prefix = path.rstrip("/") + "/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            where = os.readlink(f"/proc/{entry}/root")
        except OSError:
            continue
        if where == path or where.startswith(prefix):
            pids.append(int(entry))
    return pids


def _kill_rooted(path):
    """SIGKILL to everything running in the root at path, until nothing
    is (bounded)."""
    def none_left():
        pids = _pids_rooted_in(path)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return not pids
    return wait_until(none_left, KILL_TIMEOUT, interval=0.1)


def _unmount_all(path):
    """Unmounts everything at or below path, deepest first; lazily what
    stays busy. Returns the error texts."""
    errors = []
    for target in _mounts_under(path):
        res = subprocess.run(["umount", target], capture_output=True,
                             text=True, timeout=CMD_TIMEOUT, check=False)
        if res.returncode != 0:
            lazy = subprocess.run(["umount", "-l", target],
                                  capture_output=True, text=True,
                                  timeout=CMD_TIMEOUT, check=False)
            if lazy.returncode != 0:
                errors.append(f"umount {target}: {lazy.stderr.strip()}")
    return errors


def _remove_temp(tmp):
    """Tears down an overlay's temp dir: what runs in it, its mounts, the
    directory. Returns the error texts."""
    merged = os.path.join(tmp, "root")
    if not _kill_rooted(merged):
        return [f"processes still run in {merged}"]
    errors = _unmount_all(tmp)
    if not errors and not _mounts_under(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
    return errors


def _remove_stale(parent):
    """Overlays of earlier runs killed before they could clean up: those
    whose owner (the pid in their file "owner") is gone."""
    for tmp in glob.glob(os.path.join(parent, OVERLAY_PREFIX + "*")):
        try:
            with open(os.path.join(tmp, "owner")) as f:
                owner, start = f.read().split()
        except (OSError, ValueError):
            continue
        if _start_time(int(owner)) == start:
            continue
        for err in _remove_temp(tmp):
            print(f"stale overlay: {err}", file=sys.stderr, flush=True)


def _start_time(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2:].split()[19].decode()


class Overlay(Service):
    """A writable, throwaway copy of the cached root lower: an overlayfs
    mount at .path (upper and work directories in a temp dir under
    parent), holding lower's lock (ROOT.lock) shared so that no rebuild
    replaces lower meanwhile. Inside: proc on /proc, a /dev of the
    basic devices (DEVICES; no syslog socket, so nothing run inside
    writes to the host's log) and an empty tmpfs on /run, as a booted
    system has; with system_mounts=False, none of them (for a tool
    that copies the tree, which must not descend into /proc). Use as a
    context manager."""

    def __init__(self, lower, parent="/tmp", system_mounts=True):
        self.lower = os.path.realpath(lower)
        self.parent = parent
        self.system_mounts = system_mounts
        self.tmp = None
        self.path = None
        self._lock = None

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        _remove_stale(self.parent)
        self._lock = open(self.lower + ".lock", "a")
        if not wait_until(lambda: _try_lock(self._lock), LOCK_TIMEOUT,
                          interval=1):
            raise DovecotError(f"{self.lower}.lock: held by a rebuild")
        if not os.path.isfile(os.path.join(self.lower, ".kickgate-root")):
            raise DovecotError(f"{self.lower} is no finished root")
        self.tmp = tempfile.mkdtemp(prefix=OVERLAY_PREFIX, dir=self.parent)
        with open(os.path.join(self.tmp, "owner"), "w") as f:
            f.write(f"{os.getpid()} {_start_time(os.getpid())}\n")
        self.path = os.path.join(self.tmp, "root")
        for d in ("upper", "work", "root"):
            os.mkdir(os.path.join(self.tmp, d), 0o755)
        self._mount("overlay", "overlay", self.path, "-o",
                    f"lowerdir={self.lower},"
                    f"upperdir={os.path.join(self.tmp, 'upper')},"
                    f"workdir={os.path.join(self.tmp, 'work')}")
        if not self.system_mounts:
            return
        self._mount("proc", "proc", self.inside("/proc"))
        self._mount("tmpfs", "tmpfs", self.inside("/dev"), "-o",
                    "mode=0755,nosuid")
        _make_dev(self.inside("/dev"))
        self._mount("tmpfs", "tmpfs", self.inside("/run"), "-o",
                    "mode=0755,nosuid,nodev")

    def _mount(self, fstype, source, target, *options):
        argv = ["mount"] + (["-t", fstype] if fstype else [])
        res = subprocess.run(argv + [*options, source, target],
                             capture_output=True, text=True,
                             timeout=CMD_TIMEOUT, check=False)
        if res.returncode != 0:
            raise DovecotError(f"mount {source} on {target}: "
                               f"{res.stderr.strip()}")

    def inside(self, path):
        """The host path of path as the copy sees it."""
        return os.path.join(self.path, path.lstrip("/"))

    def stop(self):
        """Kills what runs in the copy, unmounts, removes the temp dir and
        releases the lock; raises DovecotError if something stays."""
        errors = []
        try:
            if self.tmp is not None:
                errors = _remove_temp(self.tmp)
                if not errors:
                    self.tmp = self.path = None
        finally:
            if self._lock is not None and not errors:
                self._lock.close()
                self._lock = None
        if errors:
            raise DovecotError("; ".join(errors))


def _make_dev(dev):
    """The device nodes and links a chroot needs, in the tmpfs dev."""
    for name, (major, minor) in DEVICES.items():
        path = os.path.join(dev, name)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "fd/0"),
                         ("stdout", "fd/1"), ("stderr", "fd/2")):
        os.symlink(target, os.path.join(dev, name))
    for name in ("pts", "shm"):
        os.mkdir(os.path.join(dev, name), 0o755)
    os.chmod(os.path.join(dev, "shm"), 0o1777)


def _try_lock(f):
    try:
        fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True

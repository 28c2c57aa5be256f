# SPDX-License-Identifier: MIT
"""kickgate's Debian packages, built from the source tree as it is.

The tree is copied file by file (what git tracks or would track: its
files as they are now, uncommitted changes included, not HEAD), and
`dpkg-buildpackage -b -us -uc` runs in the copy. The binary packages are
kept in CACHE/<digest>, where the digest is over every copied file's
path, mode and content: an unchanged tree reuses them, a changed one
builds afresh. Only the newest few builds are kept. A lock serializes
builds; an interrupted build leaves nothing that is used.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time

CACHE = "/var/cache/kickgate-test/debs"
BUILD_TIMEOUT = 1200
LOCK_TIMEOUT = 1500
KEEP = 3
DONE = "done"
CMD_TIMEOUT = 60


class BuildError(RuntimeError):
    pass


def _run(argv, timeout=CMD_TIMEOUT, **kwargs):
    res = subprocess.run(argv, capture_output=True, text=True,
                         timeout=timeout, check=False, **kwargs)
    if res.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed ({res.returncode}): "
                         f"{(res.stdout + res.stderr).strip()[-3000:]}")
    return res.stdout


def source_files(src):
    """The tree's files relative to src: tracked and untracked but not
    ignored, as they are in the working tree (deleted ones left out)."""
    out = _run(["git", "-C", src, "ls-files", "-z", "--cached", "--others",
                "--exclude-standard"])
    names = sorted(set(n for n in out.split("\0") if n))
    return [n for n in names if os.path.lexists(os.path.join(src, n))]


def tree_digest(src, names):
    """SHA-256 over each file's path, kind and mode bits, and content (a
    symbolic link's target)."""
    h = hashlib.sha256()
    for name in names:
        path = os.path.join(src, name)
        st = os.lstat(path)
        h.update(name.encode() + b"\0")
        if os.path.islink(path):
            h.update(b"l" + os.readlink(path).encode())
        else:
            h.update(b"f%o" % (st.st_mode & 0o7777))
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        h.update(b"\0")
    return h.hexdigest()


def _copy_tree(src, names, dest):
    for name in names:
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(src, name), target, follow_symlinks=False)


def changes_debs(changes):
    """The .deb files a .changes file lists (its Files section)."""
    debs = []
    in_files = False
    with open(changes) as f:
        for line in f:
            if not line.startswith(" "):
                in_files = line.startswith("Files:")
                continue
            if in_files:
                name = line.split()[-1]
                if name.endswith(".deb"):
                    debs.append(name)
    return debs


def _packages(directory):
    """{package name: path} of the .deb files in directory, debug symbol
    packages left out."""
    found = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".deb"):
            continue
        path = os.path.join(directory, name)
        fields = _run(["dpkg-deb", "-f", path, "Package", "Section"])
        package = fields.split("\n")[0].split(":", 1)[1].strip()
        if package.endswith("-dbgsym") or "Section: debug" in fields:
            continue
        found[package] = path
    return found


def build(src, log=print):
    """Builds (or reuses) the packages of the tree at src; returns
    ({package: .deb path}, digest, seconds the build took, 0 if
    reused)."""
    if not os.path.isdir(os.path.join(src, "debian")):
        raise FileNotFoundError(f"{src} has no debian/ directory")
    names = source_files(src)
    digest = tree_digest(src, names)
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "lock"), "a") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BuildError(f"{CACHE}/lock: another build runs")
                time.sleep(1)
        out = os.path.join(CACHE, digest[:24])
        if os.path.exists(os.path.join(out, DONE)):
            os.utime(out)
            return _packages(out), digest, 0
        log(f"building the packages of {src} ({digest[:12]})")
        start = time.monotonic()
        tmp = tempfile.mkdtemp(prefix="build.", dir=CACHE)
        try:
            work = os.path.join(tmp, "kickgate")
            _copy_tree(src, names, work)
            env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2",
                       LC_ALL="C.UTF-8")
            env.pop("MAKEFLAGS", None)
            _run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=work,
                 env=env, timeout=BUILD_TIMEOUT)
            changes = [n for n in os.listdir(tmp) if n.endswith(".changes")]
            if len(changes) != 1:
                raise BuildError(f"expected one .changes file: {changes}")
            debs = changes_debs(os.path.join(tmp, changes[0]))
            if not debs:
                raise BuildError(f"{changes[0]} lists no .deb")
            staged = os.path.join(tmp, "out")
            os.mkdir(staged)
            for name in debs + changes:
                os.rename(os.path.join(tmp, name),
                          os.path.join(staged, name))
            with open(os.path.join(staged, DONE), "w") as f:
                f.write(digest + "\n")
            shutil.rmtree(out, ignore_errors=True)
            os.rename(staged, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _prune(out)
        return _packages(out), digest, time.monotonic() - start


def _prune(keep):
    """Removes all but the KEEP newest builds (and leftovers of killed
    ones), never keep."""
    builds = []
    for name in os.listdir(CACHE):
        path = os.path.join(CACHE, name)
        if name.startswith("build."):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.isdir(path) and path != keep:
            builds.append((os.stat(path).st_mtime, path))
    for _mtime, path in sorted(builds, reverse=True)[KEEP - 1:]:
        shutil.rmtree(path, ignore_errors=True)

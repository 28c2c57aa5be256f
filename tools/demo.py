#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The README's live demo: a private Dovecot, real sessions, kickgated, and
the kickgate CLI run as a helpdesk user under a delegation rule."""
import os
import pwd
import subprocess
import sys
import tempfile
import time

from kgtest.dovecot import Dovecot
from kgtest.env import Accounts, wait_until
from kgtest.sessions import ImapSession, Pop3Session, open_sessions

BUILD = os.environ.get("KG_BUILD_DIR", "build")
FRONTEND_USER = "_kickgate"
USERS = {"alice@tenant-a.example": "pw", "bob@tenant-a.example": "pw",
         "carol@tenant-b.example": "pw", "jane": "pw"}


def show(title, argv, **kw):
    print(f"\n$ {title}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)
    sys.stdout.write(r.stdout)
    sys.stdout.write(r.stderr)
    print(f"(exit {r.returncode})")


def ensure_frontend_user():
    """kickgated's default frontend account, as kickgated.conf(5) says to
    create it; it stays, as a package would leave it."""
    try:
        pwd.getpwnam(FRONTEND_USER)
        return
    except KeyError:
        pass
    argv = ["useradd", "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
            FRONTEND_USER]
    print(f"Creating kickgated's frontend account: {' '.join(argv)}")
    subprocess.run(argv, check=True, timeout=60)


def config(d, sock, helpdesk):
    return (f"[broker]\nlisten = {sock}\nanvil = {d.anvil_path}\n"
            f"frontend_user = {FRONTEND_USER}\naudit = stderr\n\n"
            "[rule tenant-a-helpdesk]\n"
            f"principals = group:{helpdesk}\n"
            "users = *@tenant-a.example\n")


def main():
    ensure_frontend_user()
    with Accounts() as acc, Dovecot(USERS) as d, \
            tempfile.TemporaryDirectory(prefix="kg-demo.") as tmp:
        os.chmod(tmp, 0o755)
        group = acc.group("helpdesk").gr_name
        staff = acc.user("staff", groups=[group]).pw_name
        sessions = open_sessions(d, [
            (ImapSession, "alice@tenant-a.example", "127.0.0.2"),
            (ImapSession, "bob@tenant-a.example", "127.0.0.3"),
            (Pop3Session, "alice@tenant-a.example", "::1"),
            (ImapSession, "carol@tenant-b.example", "127.0.0.4"),
            (ImapSession, "jane", "127.0.0.5")])
        sock = os.path.join(tmp, "kickgate.sock")
        conf = os.path.join(tmp, "kickgated.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(config(d, sock, group))
        print(f"Dovecot 2.3 running privately, anvil at {d.anvil_path}")
        print(f"kickgated.conf:\n{config(d, sock, group)}")
        log = open(os.path.join(tmp, "kickgated.log"), "w+", encoding="utf-8")
        daemon = subprocess.Popen([f"{BUILD}/kickgated", "-F", "-c", conf],
                                  stderr=log)
        try:
            if not wait_until(lambda: os.path.exists(sock), 10):
                raise SystemExit("kickgated did not start")
            cli = [f"{BUILD}/kickgate"]
            as_staff = ["setpriv", f"--reuid={staff}", f"--regid={staff}",
                        f"--groups={group}"]
            show("kickgate who -1        # as root: every session",
                 cli + ["who", "-1", "-S", sock])
            show(f"kickgate who           # as {staff}, helpdesk of tenant A",
                 as_staff + cli + ["who", "-S", sock])
            show("kickgate kick -n '*'   # dry run: what would go",
                 as_staff + cli + ["kick", "-n", "-S", sock, "*"])
            show("kickgate kick carol@tenant-b.example   # out of scope",
                 as_staff + cli + ["kick", "-S", sock,
                                   "carol@tenant-b.example"])
            show("kickgate kick '*@tenant-a.example' 127.0.0.0/8",
                 as_staff + cli + ["kick", "-S", sock, "*@tenant-a.example",
                                   "127.0.0.0/8"])
            time.sleep(0.5)
            show("kickgate who -1        # as root, afterwards",
                 cli + ["who", "-1", "-S", sock])
            print("\nSessions as the clients see them:")
            for s in sessions:
                print(f"  {s!r:45} {'connected' if s.alive() else 'disconnected'}")
            log.seek(0)
            print("\nkickgated's log and audit trail:")
            sys.stdout.write(log.read())
        finally:
            daemon.terminate()
            daemon.wait(timeout=10)
            for s in sessions:
                s.close()


if __name__ == "__main__":
    main()

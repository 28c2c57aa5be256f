#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SIGHUP reloads kickgated's configuration (kickgated(8), SIGNALS).

A real Dovecot 2.3 holds one IMAP session of each tenant (a1 of tenant A,
b1 of tenant B). A helpdesk user in a group made for the test asks through
kickgate as itself, and the rules in force decide. A reload must keep the
listening socket (the same inode, the same supervisor, never restarted)
and take effect for the next request; a configuration with errors is
refused with its errors in the log while the running one goes on serving.
A fake anvil stands for a second Dovecot instance. Kicks are dry runs
(-n), which verify their targets but signal nothing.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import types

from kgtest.confinement import wait_filtered
from kgtest.daemon import (ACCOUNT_HINT, Kickgated, _children, _wait_pidfd,
                           build_dir)
from kgtest.dovecot import Dovecot
from kgtest.env import Accounts, wait_until
from kgtest.fakeanvil import FakeAnvil
from kgtest.runner import check, main
from kgtest.sessions import ImapSession, open_sessions

A1 = "a1@tenant-a.example"
B1 = "b1@tenant-b.example"
X1 = "x1@tenant-a.example"
USERS = {A1: "a1-pw", B1: "b1-pw"}
TENANT_A = "*@tenant-a.example"
EXIT_OK = 0
EXIT_NO_MATCH = 68
EXIT_NOPERM = 77
RELOADS = 10
SETTLE_TIMEOUT = 15
# Frontends kept ready ahead of their client (SECURITY.md).
POOL = 4
CMD_TIMEOUT = 30
REPLY_MAX = 65536
WHO_HEADER = "username # proto (pids) (ips)"


# Requests -----------------------------------------------------------------

def ask(st, kg, *args):
    """kickgate ARGS as the helpdesk user."""
    return kg.run(*args, uid=st.helper.pw_uid, gid=st.helper.pw_gid,
                  groups=[st.group.gr_gid])


def who_users(st, kg, *args):
    """(exit status, sorted user names) of who as the helpdesk user."""
    res = ask(st, kg, "who", *args)
    lines = res.out.splitlines()
    if res.code != EXIT_OK:
        return res.code, res.err
    check(lines[:1] == [WHO_HEADER], f"who: {res.out!r}")
    return res.code, sorted(line.split(" ")[0] for line in lines[1:])


def check_who(st, kg, want, *args):
    got = who_users(st, kg, *args)
    check(got == (EXIT_OK, want), f"who {' '.join(args)}: {got}, expected "
                                  f"{want}")


def check_code(res, code, what):
    check(res.code == code, f"{what}: exit {res.code}, expected {code}: "
                            f"{res.out!r} {res.err!r}")


def rule(st, users, **extra):
    return {"principals": f"group:{st.group.gr_name}", "users": users,
            **extra}


# The daemon's processes and descriptors ------------------------------------

def fds(pid):
    """What pid's descriptors are, without numbers: "socket:", "/dev/null"
    and the like, sorted. The numbers differ from broker to broker."""
    kinds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            kinds.append(re.sub(r"\[\d+\]$", "",
                                os.readlink(f"/proc/{pid}/fd/{fd}")))
        except FileNotFoundError:
            pass
    return sorted(kinds)


class Unchanged:
    """The listening socket's inode and the supervisor, to compare after
    reloads: the daemon was never restarted."""

    def __init__(self, kg):
        self.kg = kg
        self.inode = os.stat(kg.sock).st_ino

    def check(self):
        check(self.kg.wait_exit(0) is None,
              f"the supervisor exited: {self.kg.log_text()}")
        check(os.stat(self.kg.sock).st_ino == self.inode,
              "the listening socket was replaced")
        starts = self.kg.log_text().count("kickgated[supervisor]: "
                                          "listening on ")
        check(starts == 1, f"{starts} starts in the log")


def settled(kg, brokers):
    """Only the broker and a full pool of frontends, exec'd ahead of their
    client, are the supervisor's children."""
    idle = kg.idle_frontends()
    return len(idle) == POOL and sorted(_children(kg.supervisor)) == \
        sorted([*brokers.values(), *idle])


def check_retired(kg, old):
    """The broker of an earlier configuration ends by itself."""
    check(wait_until(lambda: not set(old.values()) &
                     set(_children(kg.supervisor)), SETTLE_TIMEOUT),
          f"the old broker {old} still runs: {kg.log_text()}")


def logged(kg, line):
    return f"kickgated[supervisor]: {line}\n" in kg.log_text()


# Cases ----------------------------------------------------------------------

def case_narrower_rule_takes_effect(st):
    with Kickgated(st.broker, rules={"wide": rule(st, "*")}) as kg:
        same = Unchanged(kg)
        check_who(st, kg, [A1, B1])
        check_code(ask(st, kg, "kick", "-n", B1), EXIT_OK, "kick -n b1")
        old = kg.pids()
        kg.reconfigure(rules={"narrow": rule(st, TENANT_A)})
        check(kg.reload(), f"reload refused: {kg.log_text()}")
        check_who(st, kg, [A1])
        check_code(ask(st, kg, "kick", "-n", B1), EXIT_NO_MATCH,
                   "kick -n b1 after the reload")
        check_retired(kg, old)
        kg.reconfigure(rules={})
        check(kg.reload(), f"reload refused: {kg.log_text()}")
        check(who_users(st, kg)[0] == EXIT_NOPERM,
              "who still allowed without a rule")
        same.check()


def broken_case(edit, mode, line, message):
    """The configuration written by edit (of the running one's text, with
    a narrower rule) with mode is refused: its error is logged, the broker
    keeps running and the old rule keeps deciding."""
    def case(st):
        with Kickgated(st.broker, rules={"wide": rule(st, "*")}) as kg:
            same = Unchanged(kg)
            broker = kg.pids()
            kg.rules = {"narrow": rule(st, TENANT_A)}
            text = edit(kg.config_text())
            kg.write_config_text(text, mode)
            check(not kg.reload(), f"reloaded: {kg.log_text()}")
            lineno = line if line >= 0 else text.count("\n") + 1 + line
            for want in (f"{kg.conf_path}:{lineno}: {message}",
                         f"reload refused: 1 error(s) in {kg.conf_path}; "
                         f"the running configuration stays in force"):
                check(logged(kg, want), f"no {want!r} in the log: "
                                        f"{kg.log_text()}")
            check_who(st, kg, [A1, B1])
            check(kg.pids() == broker, f"broker {kg.pids()}, was {broker}")
            same.check()
    return case


def case_new_instance_and_services(st):
    fake = ["-a", st.fake.path]
    with Kickgated(st.broker, rules={"wide": rule(st, "*")}) as kg:
        res = ask(st, kg, "who", *fake)
        check_code(res, EXIT_NOPERM, "who -a before the instance exists")
        check("is not a configured instance" in res.err, res.err)
        check_code(ask(st, kg, "kick", "-n", A1), EXIT_OK, "kick -n a1")
        kg.reconfigure(
            broker={**st.broker, "services": "pop3"},
            instances={"fake": st.fake.path},
            rules={"wide": rule(st, "*", instances=["default", "fake"])})
        check(kg.reload(), f"reload refused: {kg.log_text()}")
        check_who(st, kg, [X1], *fake)
        # a1's imap process is no longer a configured service.
        check_code(ask(st, kg, "kick", "-n", A1), EXIT_NOPERM,
                   "kick -n a1 with services = pop3")


def case_socket_settings_wait_for_restart(st):
    with Kickgated(st.broker, rules={"wide": rule(st, "*")}) as kg:
        same = Unchanged(kg)
        other = os.path.join(kg.dir, "other.sock")
        kg.rules = {"narrow": rule(st, TENANT_A)}
        kg.write_config_text(kg.config_text().replace(
            f"listen = {kg.sock}\n",
            f"listen = {other}\nlisten_mode = 0600\n"))
        check(kg.reload(), f"reload refused: {kg.log_text()}")
        for want in (f"listen = {other} takes effect at the next restart; "
                     f"still listening on {kg.sock}",
                     "listen_mode = 0600 takes effect at the next "
                     "restart; the socket keeps its mode"):
            check(logged(kg, want), f"no {want!r} in the log: "
                                    f"{kg.log_text()}")
        check(not os.path.lexists(other), f"{other} was created")
        check_who(st, kg, [A1])
        same.check()


def captured_request(*args):
    """The bytes kickgate ARGS sends, caught on a socket of this test."""
    with tempfile.TemporaryDirectory(prefix="kgr", dir="/tmp") as d, \
            socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as srv:
        path = os.path.join(d, "catch.sock")
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(CMD_TIMEOUT)
        with subprocess.Popen([os.path.join(build_dir(), "kickgate"),
                               args[0], "-S", path, *args[1:]],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) as proc:
            conn, _ = srv.accept()
            with conn:
                data = conn.recv(REPLY_MAX)
            proc.wait(CMD_TIMEOUT)
    return data


def case_accepted_client_served_by_old_configuration(st):
    """A client accepted before the reload still gets its answer, from
    the old broker, decided by the old rules."""
    request = captured_request("who")
    root = {"principals": "uid:0"}
    with Kickgated(st.broker, rules={"old": root}) as kg:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as c:
            c.settimeout(CMD_TIMEOUT)
            c.connect(kg.sock)
            check(wait_until(lambda: len(kg.frontends()) == 1,
                             SETTLE_TIMEOUT),
                  "the supervisor did not accept the client")
            kg.reconfigure(rules={"new": root})
            check(kg.reload(), f"reload refused: {kg.log_text()}")
            c.send(request)
            replies = list(iter(lambda: c.recv(REPLY_MAX), b""))
        check(replies, "no reply")
        audit = kg.audit_for(os.getpid())
        check([a.get("rule") for a in audit] == ["old"],
              f"audit lines {audit}")


def case_many_reloads_leak_nothing(st):
    with Kickgated(st.broker, rules={"wide": rule(st, "*")}) as kg:
        same = Unchanged(kg)
        first = kg.pids()
        check(wait_until(lambda: settled(kg, first), SETTLE_TIMEOUT),
              f"children {_children(kg.supervisor)}, broker {first}")
        # A role's descriptors are final once it is sandboxed.
        wait_filtered(first.values())
        before = {"supervisor": fds(kg.supervisor),
                  **{role: fds(pid) for role, pid in first.items()}}
        for i in range(RELOADS):
            users = TENANT_A if i % 2 == 0 else "*"
            kg.reconfigure(rules={f"r{i}": rule(st, users)})
            check(kg.reload(), f"reload {i} refused: {kg.log_text()}")
            check_who(st, kg, [A1] if i % 2 == 0 else [A1, B1])
        last = kg.pids()
        check(wait_until(lambda: settled(kg, last), SETTLE_TIMEOUT),
              f"children {_children(kg.supervisor)}, broker {last}")

        def after():
            return {"supervisor": fds(kg.supervisor),
                    **{role: fds(pid) for role, pid in last.items()}}

        # The broker closes a client's socket just after the client has
        # read its reply.
        wait_until(lambda: after() == before, SETTLE_TIMEOUT)
        check(after() == before, f"descriptors {after()}, were {before}")
        same.check()


def case_sigterm_stops_everything(st):
    """The broker and the frontend of a connected client end with the
    supervisor."""
    kg = Kickgated(st.broker, rules={"wide": rule(st, "*")})
    kg.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as c:
            c.connect(kg.sock)
            check(wait_until(lambda: len(kg.frontends()) == 1,
                             SETTLE_TIMEOUT), "no frontend for a client")
            pids = [*kg.pids().values(), *kg.frontends(),
                    *kg.idle_frontends()]
            pidfds = [os.pidfd_open(pid) for pid in pids]
            try:
                os.kill(kg.supervisor, signal.SIGTERM)
                status = kg.wait_exit()
                check(status == 0, f"supervisor exit {status}")
                check(all(_wait_pidfd(fd, 0) for fd in pidfds),
                      f"a child of {pids} outlived the supervisor")
            finally:
                for fd in pidfds:
                    os.close(fd)
    finally:
        kg.stop()


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        accounts = stack.enter_context(Accounts())
        st.group = accounts.group("hd")
        st.helper = accounts.user("help", groups=[st.group.gr_name])
        st.dovecot = stack.enter_context(Dovecot(USERS))
        sessions = open_sessions(st.dovecot,
                                 [(ImapSession, A1, "127.0.0.2"),
                                  (ImapSession, B1, "127.0.0.3")])
        for s in sessions:
            stack.callback(s.close)
        tmp = tempfile.mkdtemp(prefix="kgr", dir="/tmp")
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        os.chmod(tmp, 0o755)
        st.fake = stack.enter_context(FakeAnvil(
            tmp, "fake", f"imap/127.0.0.2/{X1}\t{os.getpid()}\t1\n\n"))
        st.broker = {"anvil": st.dovecot.anvil_path}
        yield st


CASES = [
    ("a narrower rule, then none, take effect on the same socket",
     case_narrower_rule_takes_effect),
    ("a syntax error is refused and the old rules stay",
     broken_case(lambda t: t + "this is not a setting\n", 0o600, -1,
                 "expected 'key = value' or a [section] header")),
    ("an unknown key is refused and the old rules stay",
     broken_case(lambda t: t.replace("[broker]\n", "[broker]\nbogus = 1\n",
                                     1), 0o600, 2,
                 "unknown key 'bogus' in [broker]")),
    ("frontend_user nobody is refused and the old rules stay",
     broken_case(lambda t: re.sub(r"^frontend_user = .*$",
                                  "frontend_user = nobody", t, flags=re.M),
                 0o600, 5,
                 "frontend_user: 'nobody' is the nobody account, shared by "
                 "other daemons and by unmapped ids" + ACCOUNT_HINT)),
    ("a file writable by others is refused and the old rules stay",
     broken_case(lambda t: t, 0o666, 0,
                 "file is writable by group or others (mode 0666)")),
    ("a new instance and new services take effect",
     case_new_instance_and_services),
    ("listen and listen_mode wait for a restart, the rest applies",
     case_socket_settings_wait_for_restart),
    ("a client accepted before the reload is served by the old rules",
     case_accepted_client_served_by_old_configuration),
    (f"{RELOADS} reloads leak no process and no descriptor",
     case_many_reloads_leak_nothing),
    ("SIGTERM stops the supervisor and its children",
     case_sigterm_stops_everything),
]

if __name__ == "__main__":
    main((CASES, setup))

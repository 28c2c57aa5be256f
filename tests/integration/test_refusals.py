#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kickgated refuses to signal what anvil names unless it is the instance's
Dovecot mail process, asks only configured anvil sockets, and reports an
unreachable anvil.

Fake anvils (tests/tools/fake_anvil.py) configured as instances name
processes this test started, a child of the fake, or pids that are gone.
Each fake is shaped like Dovecot: the listening process (the master,
named "dovecot", or in one case keeping the interpreter's name) has a
child named "anvil" that answers, and kickgated takes the parent of the
process the kernel names as the dump's writer as the master. In one case
the listener answers itself. Everything
kickgated must never signal is an unreaped child of this test or of a
fake, so the test sees whether it survived and what ended it.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import types

from kgtest.daemon import Kickgated
from kgtest.dovecot import Dovecot
from kgtest.env import wait_until
from kgtest.fakeanvil import FakeAnvil, ended_by
from kgtest.runner import check, main

USERS = {"foo": "foo-pw"}
EXIT_NO_MATCH = 68
EXIT_UNAVAILABLE = 69
EXIT_NOPERM = 77
STOP_TIMEOUT = 10
CHILD_LIFETIME = "120"
# How long a process that was wrongly sent SIGTERM would take to die.
SURVIVE_WAIT = 1.0
# How long a process rightly sent SIGTERM may take to die.
KICK_WAIT = 5
NOT_DOVECOT = "not a Dovecot mail process"
GONE = "already gone"


def dump_line(user, pid, ip="127.0.0.2", service="imap"):
    return f"{service}/{ip}/{user}\t{pid}\t1\n"


def start_child(stack, argv):
    """A child of this test, killed and reaped on leaving the stack."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)

    def end():
        proc.kill()
        proc.wait(STOP_TIMEOUT)

    stack.callback(end)
    return proc


def gone_pid():
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait(STOP_TIMEOUT)
    return proc.pid


def fake_table(st):
    """Per fake anvil: the listener's name, its children's names, and the
    dump as a function of the started fake."""
    return {
        "master_answers": ("dovecot", ("imap",),
                           lambda f: dump_line("victim", f.children[0])),
        "sleeper": ("dovecot", (),
                    lambda f: dump_line("victim", st.sleeper.pid)),
        "imap_not_master_child": ("dovecot", (),
                                  lambda f: dump_line("victim", st.imap.pid)),
        "listener_not_dovecot": (None, ("imap",),
                                 lambda f: dump_line("victim",
                                                     f.children[0])),
        "gone": ("dovecot", (), lambda f: dump_line("victim", st.gone)),
        "mixed": ("dovecot", ("imap",),
                  lambda f: dump_line("foo", f.children[0]) +
                  dump_line("ghost", st.gone)),
        "foreign_beside_mail": ("dovecot", ("imap",),
                                lambda f: dump_line("foo", f.children[0]) +
                                dump_line("victim", st.sleeper.pid)),
        "unconfigured": ("dovecot", (),
                         lambda f: dump_line("victim", st.sleeper.pid)),
    }


@contextlib.contextmanager
def setup():
    """A real Dovecot as the default instance, fake anvils for every case,
    one kickgated with the fake anvils as instances, and the processes they
    name."""
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        st.dovecot = stack.enter_context(Dovecot(USERS))
        st.tmp = tempfile.mkdtemp(prefix="kgr", dir="/tmp")
        stack.callback(shutil.rmtree, st.tmp, ignore_errors=True)
        os.chmod(st.tmp, 0o755)
        # An unrelated process, and one with a mail service's name.
        st.sleeper = start_child(stack, ["sleep", CHILD_LIFETIME])
        imap = os.path.join(st.tmp, "imap")
        shutil.copy(shutil.which("sleep"), imap)
        st.imap = start_child(stack, [imap, CHILD_LIFETIME])
        st.gone = gone_pid()
        st.fake = {}
        for name, (comm, children, dump) in fake_table(st).items():
            serve_as = None if name == "master_answers" else "anvil"
            fake = FakeAnvil(st.tmp, name, comm=comm, children=children,
                             serve_as=serve_as)
            stack.callback(fake.stop)
            fake.set_dump(dump(fake) + "\n")
            st.fake[name] = fake
        # An anvil socket file nobody listens on, as after a crash, and a
        # path with nothing at all.
        st.dead_anvil = os.path.join(st.tmp, "dead-anvil")
        with socket.socket(socket.AF_UNIX) as dead:
            dead.bind(st.dead_anvil)
        st.missing_anvil = os.path.join(st.tmp, "missing", "anvil")
        instances = {name: fake.path for name, fake in st.fake.items()
                     if name != "unconfigured"}
        instances.update({"dead": st.dead_anvil,
                          "missing": st.missing_anvil})
        st.kg = stack.enter_context(Kickgated(
            {"anvil": st.dovecot.anvil_path}, instances=instances))
        yield st


def survives(pid):
    """pid: an unreaped child of this test or of a fake."""
    time.sleep(SURVIVE_WAIT)
    return ended_by(pid) is None


def check_refused(st, fake, pid, reason=NOT_DOVECOT):
    """kick -a FAKE victim, as text and JSON: refused with exit 77, the pid
    named with reason, nothing signalled, the process alive."""
    path = st.fake[fake].path
    res = st.kg.run("kick", "-a", path, "victim")
    res_json = st.kg.run("kick", "-j", "-a", path, "victim")
    check(survives(pid), f"pid {pid} was killed")
    check(res.code == EXIT_NOPERM, f"exit {res.code}: {res.out!r} "
                                   f"{res.err!r}")
    check(f"refused: pid {pid}: {reason}\n" in res.out,
          f"output {res.out!r}")
    check("kicked connections" not in res.out, f"output {res.out!r}")
    doc = json.loads(res_json.out)
    check((res_json.code, doc["status"], doc["kicked"], doc["pids"],
           doc["refused"]) ==
          (EXIT_NOPERM, EXIT_NOPERM, [], [],
           [{"pid": pid, "reason": reason}]),
          f"kick -j: exit {res_json.code}, JSON {doc}")
    audit = st.kg.audit_for(res_json.pid)
    check(len(audit) == 1 and audit[0]["outcome"] == "refused" and
          audit[0]["pids"] == "", f"audit {audit}")


def case_unrelated_process(st):
    check_refused(st, "sleeper", st.sleeper.pid)


def case_mail_named_process_not_masters_child(st):
    check_refused(st, "imap_not_master_child", st.imap.pid)


def check_unverified_master(st, fake_name, cause):
    """The instance's master cannot be found: the kick is refused as a
    whole (77) with the cause on stderr and in JSON, no pid is listed,
    the fake's imap child survives, and the log names cause and socket."""
    fake = st.fake[fake_name]
    want = (f"refused: cannot verify Dovecot instance '{fake_name}': "
            f"{cause}; nothing was signalled")
    res = st.kg.run("kick", "-a", fake.path, "victim")
    res_json = st.kg.run("kick", "-j", "-a", fake.path, "victim")
    check(survives(fake.children[0]), "the fake's child was signalled")
    check((res.code, res.out, res.err) == (EXIT_NOPERM, "",
                                           f"kickgate: {want}\n"),
          f"exit {res.code}, stdout {res.out!r}, stderr {res.err!r}")
    doc = json.loads(res_json.out)
    check((res_json.code, doc["error"], doc["refused"], doc["pids"]) ==
          (EXIT_NOPERM, want, [], []), f"kick -j: JSON {doc}")
    audit = st.kg.audit_for(res_json.pid)
    check(len(audit) == 1 and audit[0]["outcome"] == "unverified-master"
          and audit[0]["pids"] == "", f"audit {audit}")
    line = (f"instance {fake_name}: cannot verify targets: {cause}; is "
            f"Dovecot's own anvil listening on {fake.path}?")
    check(line in st.kg.log_text(), f"the log lacks {line!r}")


def case_listener_not_named_dovecot(st):
    """anvil's parent, the fake's listener, keeps the interpreter's name;
    its child is named imap: a parent check alone would pass, so the
    refusal must come from the master's name."""
    fake = st.fake["listener_not_dovecot"]
    check_unverified_master(st, "listener_not_dovecot",
                            f"the parent of anvil (pid {fake.pid}) is not "
                            "a running Dovecot master")


def case_writer_not_named_anvil(st):
    """The listener, named dovecot, answers itself, as no Dovecot master
    does: the writer the kernel names must be anvil."""
    fake = st.fake["master_answers"]
    check_unverified_master(st, "master_answers",
                            "the process that answered on the anvil "
                            f"socket (pid {fake.pid}) is not a running "
                            "Dovecot anvil")


def case_gone_pid(st):
    path = st.fake["gone"].path
    res = st.kg.run("kick", "-a", path, "victim")
    check(res.code == EXIT_NO_MATCH, f"exit {res.code}: {res.err!r}")
    check(f"refused: pid {st.gone}: {GONE}\n" in res.out,
          f"output {res.out!r}")
    # Nothing was signalled, so no user may be reported as kicked.
    check("kicked connections" not in res.out,
          f"output reports a kick: {res.out!r}")
    res = st.kg.run("kick", "-j", "-a", path, "victim")
    doc = json.loads(res.out)
    check((res.code, doc["kicked"], doc["pids"], doc["refused"]) ==
          (EXIT_NO_MATCH, [], [], [{"pid": st.gone, "reason": GONE}]),
          f"kick -j: exit {res.code}, JSON {doc}")


def case_gone_pid_beside_a_live_process(st):
    """The live mail process is sent SIGTERM; only its user is reported
    kicked."""
    fake = st.fake["mixed"]
    imap = fake.children[0]
    res = st.kg.run("kick", "-a", fake.path, "*")
    check(res.code == 0, f"exit {res.code}: {res.err!r}")
    how = wait_until(lambda: ended_by(imap), KICK_WAIT)
    check(how == signal.SIGTERM, f"pid {imap} ended by {how!r}, "
                                 "not by SIGTERM")
    check(res.out == "kicked connections from the following users:\n"
                     f"foo\nrefused: pid {st.gone}: {GONE}\n",
          f"output {res.out!r}")


def case_foreign_pid_beside_a_mail_process(st):
    """All or nothing: the mail process that passed its checks is not
    signalled either, and the reply names no pid and counts nothing as
    kicked."""
    fake = st.fake["foreign_beside_mail"]
    imap = fake.children[0]
    res = st.kg.run("kick", "-j", "-a", fake.path, "*")
    doc = json.loads(res.out)
    check((res.code, doc["kicked"], doc["pids"], doc["refused"],
           doc["connections"], doc["processes"]) ==
          (EXIT_NOPERM, [], [], [{"pid": st.sleeper.pid,
                                  "reason": NOT_DOVECOT}], 0, 0),
          f"kick -j: exit {res.code}, JSON {doc}")
    check(survives(imap), f"mail process {imap} was signalled")
    check(survives(st.sleeper.pid), "the foreign pid was killed")
    audit = st.kg.audit_for(res.pid)
    check(len(audit) == 1 and audit[0]["outcome"] == "refused" and
          audit[0]["pids"] == "" and audit[0]["conns"] == "0",
          f"audit {audit}")


def case_unconfigured_anvil(st):
    fake = st.fake["unconfigured"]
    res = st.kg.run("kick", "-a", fake.path, "victim")
    check(res.code == EXIT_NOPERM, f"exit {res.code}")
    check(res.err == f"kickgate: anvil socket {fake.path} is not a "
                     "configured instance\n", f"stderr {res.err!r}")
    res = st.kg.run("who", "-a", fake.path)
    check(res.code == EXIT_NOPERM, f"who: exit {res.code}")
    check(fake.connections() == 0,
          f"the unconfigured anvil got {fake.connections()} connections")
    check(survives(st.sleeper.pid), "the pid it names was killed")


def case_configured_path_spelled_differently(st):
    """-a is compared byte for byte: another spelling of a configured path
    is not that instance."""
    fake = st.fake["sleeper"]
    before = fake.connections()
    for path in (fake.path.replace("/anvil", "//anvil"), fake.path + "/",
                 os.path.join(fake.dir, ".", "anvil")):
        res = st.kg.run("who", "-a", path)
        check(res.code == EXIT_NOPERM and "not a configured instance"
              in res.err, f"who -a {path}: exit {res.code}, {res.err!r}")
    check(fake.connections() == before, "the anvil was asked")


def case_anvil_absent(st):
    for path, why in ((st.missing_anvil, "No such file or directory"),
                      (st.dead_anvil, "Connection refused")):
        for args in (["who", "-a", path], ["kick", "-a", path, "foo"]):
            res = st.kg.run(*args)
            check(res.code == EXIT_UNAVAILABLE,
                  f"{args}: exit {res.code}, {res.err!r}")
            name = "missing" if path == st.missing_anvil else "dead"
            check(res.err == f"kickgate: kickgated cannot reach Dovecot's "
                             f"anvil at {path} for instance {name}: {why}; "
                             f"is Dovecot running? does the broker's account "
                             f"have the anvil socket's group?\n",
                  f"{args}: stderr {res.err!r}")
            check(res.out == "", f"{args}: stdout {res.out!r}")


def case_daemon_still_serves(st):
    res = st.kg.run("who", "-1")
    check(res.code == 0, f"who: exit {res.code}, {res.err!r}")
    check(st.kg.running(), f"daemon processes {st.kg.pids()}")


CASES = [
    ("unrelated_process_refused_and_survives", case_unrelated_process),
    ("mail_named_process_outside_dovecot_refused_and_survives",
     case_mail_named_process_not_masters_child),
    ("child_of_master_not_named_dovecot_refused_as_a_whole",
     case_listener_not_named_dovecot),
    ("dump_not_written_by_anvil_refused_as_a_whole",
     case_writer_not_named_anvil),
    ("gone_pid_reported_as_already_gone", case_gone_pid),
    ("gone_pid_beside_live_process_reports_only_the_kicked_user",
     case_gone_pid_beside_a_live_process),
    ("foreign_pid_beside_a_mail_process_refuses_both",
     case_foreign_pid_beside_a_mail_process),
    ("unconfigured_anvil_denied_without_connecting", case_unconfigured_anvil),
    ("other_spelling_of_configured_path_denied",
     case_configured_path_spelled_differently),
    ("absent_anvil_is_unavailable", case_anvil_absent),
    ("daemon_still_serves", case_daemon_still_serves),
]


if __name__ == "__main__":
    main((CASES, setup))

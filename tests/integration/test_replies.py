#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Refusals and configuration errors a person can act on.

A real Dovecot 2.3 runs one imap process for every session (shared_imap),
so a kick of one user meets the others' connections on the same process.
The caller "desk" is a created system user whose rule covers tenant A,
without -f, on the default instance and on two more whose anvils cannot
be reached. Every refusal must reach stderr (and JSON's "error"), never
stdout, with its exit status; data goes to stdout only.

kickgated's own command line and configuration messages are checked on
files this test writes.
"""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import types

from kgtest import env
from kgtest.daemon import Kickgated, build_dir
from kgtest.dovecot import Dovecot
from kgtest.runner import check, main
from kgtest.scenarios import session_set
from kgtest.sessions import ImapSession

A1 = "a1@tenant-a.example"
A2 = "a2@tenant-a.example"
B1 = "b1@tenant-b.example"
USERS = {A1: "a1-pw", A2: "a2-pw", B1: "b1-pw"}
SAME_TENANT = [(ImapSession, A1, "127.0.0.2"), (ImapSession, A2, "127.0.0.2")]
TWO_TENANTS = [(ImapSession, A1, "127.0.0.2"), (ImapSession, B1, "127.0.0.3")]

EXIT_NEED_FORCE = 1
EXIT_UNAVAILABLE = 69
EXIT_NOPERM = 77
EXIT_CONFIG = 78
CMD_TIMEOUT = 30
NOBODY_UID = 65534

FORCE_DENIED = ("nothing was kicked: the matching processes also serve "
                "other connections, and your rule 'desk' does not allow -f")
BLOCKED = ("refused: nothing was kicked: a matching process also serves "
           "sessions outside your scope, which you may not end")
UNREACHABLE = ("kickgated cannot reach Dovecot's anvil at {path} for "
               "instance {name}: {why}; is Dovecot running? does the "
               "broker's account have the anvil socket's group?")


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        acc = stack.enter_context(env.Accounts())
        st.desk = acc.user("desk")
        st.nobody = acc.user("norule")
        st.dovecot = stack.enter_context(Dovecot(USERS, shared_imap=True))
        st.tmp = tempfile.mkdtemp(prefix="kgy", dir="/tmp")
        stack.callback(shutil.rmtree, st.tmp, ignore_errors=True)
        os.chmod(st.tmp, 0o755)
        st.anvils = unreachable_anvils(stack, st.tmp)
        instances = dict(st.anvils)
        instances["other"] = os.path.join(st.tmp, "other", "anvil")
        st.kg = stack.enter_context(Kickgated(
            {"anvil": st.dovecot.anvil_path}, instances=instances, rules={
                "desk": {"principals": f"user:{st.desk.pw_name}",
                         "users": "*@tenant-a.example", "force": False,
                         "instances": ["default", *st.anvils]}}))
        yield st


def unreachable_anvils(stack, tmp):
    """{instance name: anvil path}: nothing there; a socket file nobody
    listens on; a listening socket the broker may not open (another uid's,
    mode 0600: the broker keeps no CAP_DAC_OVERRIDE)."""
    missing = os.path.join(tmp, "missing", "anvil")
    dead = os.path.join(tmp, "dead-anvil")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(dead)
    closed = os.path.join(tmp, "closed-anvil")
    listener = socket.socket(socket.AF_UNIX)
    stack.callback(listener.close)
    listener.bind(closed)
    listener.listen()
    os.chown(closed, NOBODY_UID, NOBODY_UID)
    os.chmod(closed, 0o600)
    return {"missing": missing, "dead": dead, "closed": closed}


def run_as(st, user, *args):
    return st.kg.run(*args, uid=user.pw_uid, gid=user.pw_gid)


def check_refusal(res, code, err, what):
    """A refusal: nothing on stdout, exactly err on stderr."""
    check((res.code, res.out, res.err) == (code, "", err),
          f"{what}: exit {res.code}, stdout {res.out!r}, stderr {res.err!r}")


def check_json_refusal(res, code, error, what):
    doc = json.loads(res.out)
    check((res.code, doc["status"], doc["error"]) == (code, code, error),
          f"{what} -j: exit {res.code}, {doc}")
    check(res.err == f"kickgate: {error}\n", f"{what} -j: {res.err!r}")
    return doc


def all_alive(sessions):
    return all(s.alive() for s in sessions)


# Refusals of a kick ------------------------------------------------------

def case_need_force_without_right_to_force(st):
    """a1 and a2 share a process; desk may not use -f: told so, and not
    told to use it."""
    with session_set(st.dovecot, SAME_TENANT) as sessions:
        res = run_as(st, st.desk, "kick", A1)
        check_refusal(res, EXIT_NEED_FORCE,
                      f"kickgate: {FORCE_DENIED}\nkickgate: other "
                      f"connections on those processes are from: {A2}\n",
                      "kick")
        res = run_as(st, st.desk, "kick", "-j", A1)
        doc = check_json_refusal(res, EXIT_NEED_FORCE, FORCE_DENIED, "kick")
        check((doc["kicked"], doc["pids"], doc["warning"]) == ([], [], [A2]),
              f"kick -j: {doc}")
        check("Use the" not in res.out + res.err, "-f was suggested")
        check(all_alive(sessions), "a session was ended")


def case_blocked_by_scope_has_no_count(st):
    """a1 shares its process with b1, outside desk's scope: an error on
    stderr and in JSON that counts nothing of tenant B; the audit line
    keeps the count for the administrator."""
    with session_set(st.dovecot, TWO_TENANTS) as sessions:
        res = run_as(st, st.desk, "kick", A1)
        check_refusal(res, EXIT_NOPERM, f"kickgate: {BLOCKED}\n", "kick")
        res = run_as(st, st.desk, "kick", "-j", A1)
        doc = check_json_refusal(res, EXIT_NOPERM, BLOCKED, "kick")
        check("outside_scope" not in doc and not re.search(r"\d", BLOCKED),
              f"a count reaches the caller: {doc}")
        check(B1 not in res.out + res.err, "tenant B's user is shown")
        audit = st.kg.audit_for(res.pid)
        check(len(audit) == 1 and
              (audit[0]["outcome"], audit[0].get("outside")) ==
              ("blocked-by-scope", "1"), f"audit {audit}")
        check(all_alive(sessions), "a session was ended")


# An anvil the daemon cannot reach -----------------------------------------

def case_unreachable_anvil_blames_the_daemon(st):
    whys = {"missing": "No such file or directory",
            "dead": "Connection refused", "closed": "Permission denied"}
    for name, why in whys.items():
        error = UNREACHABLE.format(path=st.anvils[name], name=name, why=why)
        for args in (["who", "-a", name], ["kick", "-a", name, A1]):
            res = run_as(st, st.desk, *args)
            check_refusal(res, EXIT_UNAVAILABLE, f"kickgate: {error}\n",
                          " ".join(args))
            res = run_as(st, st.desk, args[0], "-j", *args[1:])
            check_json_refusal(res, EXIT_UNAVAILABLE, error, " ".join(args))


# Instances by name --------------------------------------------------------

def instance_lines(st, names):
    paths = {"default": st.dovecot.anvil_path, **st.anvils}
    return "".join(f"{n} {paths[n]}\n" for n in names)


def case_instances_lists_what_the_rule_allows(st):
    mine = ["default", "missing", "dead", "closed"]
    res = run_as(st, st.desk, "instances")
    check((res.code, res.out, res.err) ==
          (0, "instance anvil\n" + instance_lines(st, mine), ""),
          f"instances: {res}")
    res = run_as(st, st.desk, "instances", "-j")
    doc = json.loads(res.out)
    check((res.code, [i["name"] for i in doc["instances"]], doc["status"],
           doc["error"], res.err) == (0, mine, 0, None, ""),
          f"instances -j: {res}")
    res = st.kg.run("instances", "-j")
    names = [i["name"] for i in json.loads(res.out)["instances"]]
    check(res.code == 0 and names == mine + ["other"],
          f"root: instances -j: {res}")


def case_instances_without_a_rule_is_refused(st):
    # No rule names the caller at all: the supervisor answers before any
    # request is read, whatever the request.
    error = "permission denied: no rule allows this caller"
    res = run_as(st, st.nobody, "instances")
    check_refusal(res, EXIT_NOPERM, f"kickgate: {error}\n", "instances")
    res = run_as(st, st.nobody, "instances", "-j")
    doc = check_json_refusal(res, EXIT_NOPERM, error, "instances")
    check(doc["instances"] == [], f"instances -j: {doc}")


def case_a_takes_an_instance_name(st):
    with session_set(st.dovecot, SAME_TENANT):
        res = run_as(st, st.desk, "who", "-1", "-a", "default")
        check(res.code == 0 and A1 in res.out and res.err == "",
              f"who -a default: {res}")
    res = run_as(st, st.desk, "who", "-a", "other")
    check_refusal(res, EXIT_NOPERM, "kickgate: permission denied: no rule "
                  "allows this caller on this instance\n", "who -a other")
    error = ("there is no instance named 'nosuch'; 'kickgate instances' "
             "lists those you may use")
    res = run_as(st, st.desk, "who", "-a", "nosuch")
    check_refusal(res, EXIT_NOPERM, f"kickgate: {error}\n", "who -a nosuch")
    res = run_as(st, st.desk, "who", "-j", "-a", "nosuch")
    check_json_refusal(res, EXIT_NOPERM, error, "who -a nosuch")


# kickgated's command line and configuration ----------------------------------

def kickgated(*args):
    proc = subprocess.run([os.path.join(build_dir(), "kickgated"), *args],
                          capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=CMD_TIMEOUT)
    return proc.returncode, proc.stdout, proc.stderr


def example_path():
    with open(os.path.join(build_dir(), "kg_config.h")) as f:
        return re.search(r'#define KG_EXAMPLE_CONFIG "([^"]*)"',
                         f.read()).group(1)


def write_conf(st, name, text, mode=0o600):
    path = os.path.join(st.tmp, name)
    with open(path, "w", newline="") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def check_config(path, want_err):
    """-t and a start both refuse path with exactly want_err."""
    for args in (["-t", "-c", path], ["-F", "-c", path]):
        code, out, err = kickgated(*args)
        check((code, out, err) == (EXIT_CONFIG, "", want_err),
              f"kickgated {args}: exit {code}, {out!r}, {err!r}")


def case_help_and_version(st):
    for opt in ("--help", "-h"):
        code, out, err = kickgated(opt)
        check(code == 0 and out.startswith("usage: kickgated") and
              "--version" in out and example_path() in out and err == "",
              f"{opt}: {code} {out!r} {err!r}")
    for opt in ("--version", "-V"):
        code, out, err = kickgated(opt)
        check(code == 0 and re.fullmatch(r"kickgated \d+\.\d+\.\d+\n", out)
              and err == "", f"{opt}: {code} {out!r} {err!r}")


def case_missing_config_names_the_example(st):
    path = os.path.join(st.tmp, "none.conf")
    check_config(path, f"{path}:0: cannot open: No such file or directory "
                       f"(a commented example is installed at "
                       f"{example_path()})\n")


def case_dos_line_endings_are_named(st):
    path = write_conf(st, "dos.conf",
                      "[broker]\r\naudit = stderr\r\n[rule r]\r\n"
                      "principals = uid:0\r\nforce = maybe\r\n")
    check_config(path, f"{path}:1: line ends with CR: the file has DOS "
                       f"line endings; convert it with sed -i 's/\\r$//' "
                       f"{path}\n{path}:5: force: 'maybe' is not yes or "
                       f"no\n")


def case_unknown_key_suggests_the_nearest(st):
    path = write_conf(st, "typo.conf",
                      "[broker]\nanvl = /run/a\n[rule r]\n"
                      "principals = uid:0\nmax_session = 3\nfoo = 1\n")
    check_config(path, f"{path}:2: unknown key 'anvl' in [broker]; did you "
                       f"mean 'anvil'?\n{path}:5: unknown key 'max_session' "
                       f"in [rule r]; did you mean 'max_sessions'?\n"
                       f"{path}:6: unknown key 'foo' in [rule r]\n")


def case_unsafe_file_still_reports_its_content(st):
    path = write_conf(st, "unsafe.conf",
                      "[rule r]\nprincipals = uid:0\nwho = perhaps\n",
                      mode=0o666)
    check_config(path, f"{path}:0: file is writable by group or others "
                       f"(mode 0666)\n{path}:3: who: 'perhaps' is not yes "
                       f"or no\n")


CASES = [
    ("need_force_without_right_to_force_does_not_suggest_f",
     case_need_force_without_right_to_force),
    ("blocked_by_scope_is_an_error_without_a_count",
     case_blocked_by_scope_has_no_count),
    ("unreachable_anvil_blames_the_daemon",
     case_unreachable_anvil_blames_the_daemon),
    ("instances_lists_what_the_rule_allows",
     case_instances_lists_what_the_rule_allows),
    ("instances_without_a_rule_is_refused",
     case_instances_without_a_rule_is_refused),
    ("a_takes_an_instance_name", case_a_takes_an_instance_name),
    ("kickgated_help_and_version", case_help_and_version),
    ("missing_config_names_the_example",
     case_missing_config_names_the_example),
    ("dos_line_endings_are_named", case_dos_line_endings_are_named),
    ("unknown_key_suggests_the_nearest",
     case_unknown_key_suggests_the_nearest),
    ("unsafe_file_still_reports_its_content",
     case_unsafe_file_still_reports_its_content),
]


if __name__ == "__main__":
    main((CASES, setup))

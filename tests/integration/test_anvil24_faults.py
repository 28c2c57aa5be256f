#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A Dovecot 2.4 kick against a fake protocol-2 anvil.

On Dovecot 2.4 anvil kicks: kickgated asks KICK-USER once per user and
process, then dumps again every 25 ms until the kicked connections are
gone or kick_confirm_ms passes. Two fakes (tests/tools/fake_anvil.py
--protocol 2), each an instance pinned to protocol 2.4: "stays" keeps
listing the target's connection whatever it is asked, "goes" lists it no
more once it has been asked a KICK-USER. Both dumps carry a malformed
line (a bad GUID) on another process, which blocks nothing. The caller
"desk" is a created system user whose rule covers tenant A on both.

- A connection that stays: the kick ends with exit 75 after about
  kick_confirm_ms, naming the user still connected; anvil was asked
  exactly one KICK-USER, with the user and the connection's GUID, and
  dumped several times after it, each on a connection of its own.
- A connection that goes: exit 0, "1 connections kicked", and a single
  dump after the kick.
- Either way the broker logs the malformed line once per kick, not once
  per dump.
"""

import contextlib
import shutil
import sys
import tempfile
import time
import types

from kgtest import env, replies24
from kgtest.daemon import Kickgated
from kgtest.fakeanvil import FakeAnvil
from kgtest.runner import Runner, check

A1 = "a1@tenant-a.example"
TENANT_A = "*@tenant-a.example"
MAIL_PID = 4242
OTHER_PID = 4343
GUID = "0123456789abcdef00112233445566ff"
KICK_CONFIRM_MS = 300
# How many dumps a lingering connection must see at least: the broker
# looks every 25 ms for KICK_CONFIRM_MS, which leaves room for a loaded
# machine.
MIN_LOOKS = 3
DUMP = "CONNECT-DUMP"
KICK = f"KICK-USER\t{A1}\t{GUID}"
MALFORMED = "malformed line(s) skipped, first: bad connection GUID"


def dump24(*rows):
    """A whole protocol-2 reply: no field names, rows, the empty line."""
    return "\n" + "".join("\t".join(map(str, row)) + "\n"
                          for row in rows) + "\n"


TARGET_ROW = (MAIL_PID, A1, "imap", "127.0.0.2", GUID, "")
BAD_ROW = (OTHER_PID, "b1@tenant-b.example", "imap", "127.0.0.3",
           "not-a-guid", "")


@contextlib.contextmanager
def setup():
    with contextlib.ExitStack() as stack:
        st = types.SimpleNamespace()
        acc = stack.enter_context(env.Accounts())
        st.desk = acc.user("desk")
        st.tmp = tempfile.mkdtemp(prefix="kg24", dir="/tmp")
        stack.callback(shutil.rmtree, st.tmp, ignore_errors=True)
        st.stays = stack.enter_context(FakeAnvil(
            st.tmp, "stays", dump24(TARGET_ROW, BAD_ROW), protocol=2))
        st.goes = stack.enter_context(FakeAnvil(
            st.tmp, "goes", dump24(TARGET_ROW, BAD_ROW), protocol=2,
            after_kick=dump24(BAD_ROW)))
        st.kg = stack.enter_context(Kickgated(
            {"anvil": st.stays.path, "protocol": "2.4",
             "kick_confirm_ms": KICK_CONFIRM_MS},
            instances={"goes": {"anvil": st.goes.path,
                                "protocol": "2.4"}},
            rules={"desk": {"principals": f"user:{st.desk.pw_name}",
                            "users": TENANT_A,
                            "instances": ["default", "goes"]}}))
        yield st


def malformed_logged(st, fake):
    return st.kg.log_text().count(f"anvil {fake.path}: 1 {MALFORMED}")


def kick_as_desk(st, fake, *args):
    """kickgate kick ARGS as desk on fake's instance: (Result, audit,
    seconds taken, the commands fake got for it, the connections it
    accepted for it, how often the malformed line was logged for it)."""
    commands = len(fake.commands())
    conns = fake.connections()
    logged = malformed_logged(st, fake)
    start = time.monotonic()
    res, audit = st.kg.run_audited("kick", "-a", fake.path, *args,
                                   uid=st.desk.pw_uid, gid=st.desk.pw_gid)
    took = time.monotonic() - start
    return (res, audit, took, fake.commands()[commands:],
            fake.connections() - conns, malformed_logged(st, fake) - logged)


def check_asked(commands, conns, looks):
    """A dump to plan, one KICK-USER, then looks dumps, each of them and
    the kick on a connection of its own."""
    check(commands == [DUMP, KICK] + [DUMP] * looks,
          f"anvil was sent {commands}, expected {DUMP!r}, {KICK!r}, then "
          f"{looks} x {DUMP!r}")
    check(conns == len(commands),
          f"{conns} connections for {len(commands)} commands")


def case_lingering_connection_exits_75(st):
    res, audit, took, commands, conns, logged = kick_as_desk(
        st, st.stays, A1)
    replies24.check_remained(res, audit, {A1})
    looks = len(commands) - 2
    check(looks >= MIN_LOOKS,
          f"{looks} dumps after the kick in {took:.2f} s: {commands}")
    check_asked(commands, conns, looks)
    check(took >= KICK_CONFIRM_MS / 1000,
          f"kickgate gave up after {took:.2f} s")
    check(logged == 1,
          f"the malformed line was logged {logged} times over "
          f"{looks + 1} dumps: {st.kg.log_text()[-2000:]}")


def case_connection_gone_after_kick_exits_0(st):
    res, audit, _took, commands, conns, logged = kick_as_desk(
        st, st.goes, A1)
    replies24.check_kicked(res, audit, {A1}, 1)
    check_asked(commands, conns, 1)
    check(logged == 1,
          f"the malformed line was logged {logged} times: "
          f"{st.kg.log_text()[-2000:]}")


CASES = [
    ("a_connection_that_stays_exits_75_and_logs_malformed_once",
     case_lingering_connection_exits_75),
    ("a_connection_gone_after_the_kick_exits_0",
     case_connection_gone_after_kick_exits_0),
]


def main():
    env.require_root()
    runner = Runner()
    runner.group(CASES, setup)
    sys.exit(runner.finish())


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A running kickgated whose instances are all pinned to protocol 2.4
keeps no capability in its broker: Dovecot 2.4's anvil does every kick.

The broker of such a daemon, as root and as a broker_user, shows every
capability set empty in /proc, and still serves: a who on an anvil that
is not there is answered 69 by the same broker. One instance left at
"protocol = auto" (it may meet a 2.3 anvil, where the broker kicks) gives
the broker CAP_KILL again. No Dovecot is needed: the broker confines
itself before it asks any anvil.
"""

import os
import sys

from kgtest import env
from kgtest.confinement import ANVIL_KICKS_CAPS, check_broker, wait_filtered
from kgtest.daemon import Kickgated
from kgtest.env import Accounts
from kgtest.runner import Runner, check

EXIT_UNAVAILABLE = 69


class InstanceKickgated(Kickgated):
    """kickgated with one more instance, whose [instance] settings are
    given whole (Kickgated takes only an anvil path)."""

    def __init__(self, broker, name, settings):
        super().__init__(broker)
        self.extra = (name, settings)

    def config_text(self):
        name, settings = self.extra
        lines = [f"[instance {name}]"]
        lines += [f"{k} = {v}" for k, v in settings.items()]
        return super().config_text() + "\n".join(lines) + "\n"


def broker_pid(kg):
    pid = kg.pids()["broker"]
    wait_filtered([pid])
    return pid


def check_serves(kg, pid):
    """A who reaches the broker's anvil step: the sandbox let it run."""
    res = kg.run("who")
    check(res.code == EXIT_UNAVAILABLE and "cannot reach" in res.err,
          f"who: {res.code} {res.err!r}")
    check(kg.pids().get("broker") == pid, "the broker changed")


def case_root_broker_keeps_nothing():
    with Kickgated({"anvil": "/run/kg-test-none/anvil",
                    "protocol": "2.4"}) as kg:
        pid = broker_pid(kg)
        problems = check_broker(pid, caps=ANVIL_KICKS_CAPS)
        check(not problems, "; ".join(problems))
        check_serves(kg, pid)


def case_broker_user_keeps_nothing():
    with Accounts() as accounts:
        group = accounts.group("anvil")
        user = accounts.user("brk", groups=[group.gr_name])
        with Kickgated({"anvil": "/run/kg-test-none/anvil",
                        "protocol": "2.4",
                        "broker_user": user.pw_name}) as kg:
            pid = broker_pid(kg)
            problems = check_broker(
                pid, user.pw_uid, user.pw_gid,
                os.getgrouplist(user.pw_name, user.pw_gid),
                ANVIL_KICKS_CAPS)
            check(not problems, "; ".join(problems))
            check_serves(kg, pid)


def case_one_auto_instance_keeps_cap_kill():
    with InstanceKickgated({"anvil": "/run/kg-test-none/anvil",
                            "protocol": "2.4"}, "old",
                           {"anvil": "/run/kg-test-old/anvil",
                            "protocol": "auto"}) as kg:
        problems = check_broker(broker_pid(kg))
        check(not problems, "; ".join(problems))


def main():
    env.require_root()
    runner = Runner()
    runner.run("root broker: no capability when anvil kicks",
               case_root_broker_keeps_nothing)
    runner.run("broker_user: no capability when anvil kicks",
               case_broker_user_keeps_nothing)
    runner.run("an instance on auto: CAP_KILL kept",
               case_one_auto_instance_keeps_cap_kill)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())

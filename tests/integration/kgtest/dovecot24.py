# SPDX-License-Identifier: MIT
"""A private, throwaway Dovecot 2.4 instance on loopback, run from a
Debian 13 (trixie) root.

The root comes from tools/debian-root trixie (built once, cached outside
the source tree); Dovecot runs chrooted into it as kgtest.debroot.Rooted
describes: the paths of this class are host paths, as in kgtest.dovecot.

Everything else is the 2.3 harness's (kgtest.dovecot.Dovecot): the mail
user, ports, start modes, restart, stopping. The configuration is in 2.4
syntax: passwd-file passdb, static userdb, and the alternative username
field user_tenant (the domain of the user name), which anvil 2.4 lists
per connection. Login and internal processes use the root's Debian
accounts (dovenull, dovecot). An instance may proxy some users' logins
to another instance (proxy_to, proxied): anvil then lists those sessions
under the login service, with the backend's address as dest_ip. Dovecot
2.4.1 kicks a proxied session only in a login process that serves many
(shared_login): a login process of its own gets anvil's SIGTERM and
keeps proxying.

anvil 2.4 speaks a protocol of its own (version 2): on accept it writes
its VERSION line first, the client answers with its VERSION line and an
empty line; CONNECT-DUMP then returns a header (the alternative username
fields) and one line per connection.
"""

import collections
import re

from kgtest import debroot
from kgtest.debroot import Rooted
from kgtest.dovecot import (FOREGROUND, INTERNAL_USER, LOGIN_USER, LOOPBACK,
                            DovecotError, Dovecot, _anvil_connect,
                            _anvil_recv, _anvil_unescape)

SERVER_VERSION = b"VERSION\tanvil-server\t2\t0\n"
CLIENT_HANDSHAKE = b"VERSION\tanvil-client\t2\t0\n\n"
TENANT_FIELD = "user_tenant"
# The first columns of 2.4's `doveadm who -1`; alternative username
# fields follow.
WHO_COLUMNS = ["username", "service", "pid", "ip", "dest_ip"]
# 2.4's `doveadm who`: a line per user and service.
WHO_GROUP_COLUMNS = ["username", "#", "service", "(pids)", "(ips)"]
WHO_GROUP_RE = re.compile(r"(?P<user>\S+) +(?P<count>\d+) +(?P<service>\S+)"
                          r" +\((?P<pids>[\d ]*)\) +\((?P<ips>[^()]*)\) *")
KICKED_RE = re.compile(r"(\d+) connections kicked\n")

# One CONNECT-DUMP row: alt maps each header field to its value (fields
# beyond a short row's end are missing).
AnvilConnection = collections.namedtuple(
    "AnvilConnection", "pid user service ip guid dest_ip alt")


def build_root():
    """Builds or reuses the trixie root (tools/debian-root trixie);
    returns its path. Raises DovecotError when it cannot be had."""
    return debroot.build_root("trixie")


# What makes a login service serve every client in one process.
SHARED_LOGIN_SETTINGS = ("  restart_request_count = unlimited\n"
                         "  client_limit = 100\n"
                         "  process_limit = 1\n")
# The backend a proxy sends its users to: the backend listens on it too.
PROXY_HOST = "127.0.0.1"


def anvil_handshake(sock):
    """The 2.4 handshake on a fresh connection: reads the server's VERSION
    line (it speaks first), checks it, answers. Returns the bytes the
    server sent first and anything read after them."""
    data = _anvil_recv(sock, b"", lambda d: b"\n" in d)
    if not data.startswith(SERVER_VERSION):
        raise DovecotError(f"anvil's first line is not {SERVER_VERSION!r}: "
                           f"{data!r}")
    sock.sendall(CLIENT_HANDSHAKE)
    return data[len(SERVER_VERSION):]


def parse_connect_dump(data):
    """Parses a 2.4 CONNECT-DUMP reply (after the handshake): the header
    line, rows, an empty line. Returns (fields, [AnvilConnection])."""
    text = data.decode("utf-8", "surrogateescape")
    header, _, rest = text.partition("\n")
    fields = [_anvil_unescape(f) for f in header.split("\t")] if header \
        else []
    rows = []
    for line in rest.split("\n"):
        if not line:
            break
        values = [_anvil_unescape(v) for v in line.split("\t")]
        if len(values) < 6:
            raise DovecotError(f"short CONNECT-DUMP row {line!r}")
        pid, user, service, ip, guid, dest_ip = values[:6]
        rows.append(AnvilConnection(int(pid), user, service, ip or None, guid,
                                    dest_ip or None,
                                    dict(zip(fields, values[6:]))))
    return fields, rows


def _dump_complete(data):
    """A CONNECT-DUMP reply is complete: header line, rows, empty line."""
    if b"\n" not in data:
        return False
    rest = data.partition(b"\n")[2]
    return rest == b"\n" or rest.endswith(b"\n\n")


class Dovecot24(Rooted, Dovecot):
    """Runs a private Dovecot 2.4 from the trixie root; use as a context
    manager. Arguments as for kgtest.dovecot.Dovecot; anvil_group names a
    host group; root and base_dir as for kgtest.debroot.Rooted (the
    default root: tools/debian-root trixie builds or reuses it at
    start). proxy_to: a running Dovecot24 that
    the users in proxied are sent to over IMAP (their logins here are
    proxies; the others are served here). shared_login: one login
    process per protocol serves every client."""

    SHARED_PROCESS_SETTING = "restart_request_count = unlimited"
    SUITE = "trixie"

    def __init__(self, users, shared_imap=False, imap_process_limit=None,
                 mode=FOREGROUND, root=None, anvil_group=None,
                 proxy_to=None, proxied=(), shared_login=False,
                 base_dir=None):
        super().__init__(users, shared_imap=shared_imap,
                         imap_process_limit=imap_process_limit,
                         anvil_group=anvil_group, mode=mode, root=root,
                         base_dir=base_dir)
        unknown = set(proxied) - set(users)
        if unknown or (proxied and proxy_to is None):
            raise ValueError(f"proxied users {sorted(proxied)} need "
                             f"proxy_to and must be users ({unknown})")
        self.proxy_to = proxy_to
        self.proxied = frozenset(proxied)
        self.shared_login = shared_login

    def _passdb_extra(self, name):
        if name not in self.proxied:
            return ""
        return (f"proxy=y host={PROXY_HOST} "
                f"port={self.proxy_to.imap_port}")

    def _services_conf(self):
        """The 2.3 harness's sections, and the login services' settings
        in sections of their own (Dovecot merges sections of one
        name)."""
        conf = super()._services_conf()
        if self.shared_login:
            for login in ("imap-login", "pop3-login"):
                conf += f"service {login} {{\n{SHARED_LOGIN_SETTINGS}}}\n"
        return conf

    def _write_conf(self):
        d = self._inner(self.dir)
        inner_base = self._inner(self.base_dir)
        uid, gid = self.mail_user.pw_uid, self.mail_user.pw_gid
        v = self._config_version
        conf = f"""\
dovecot_config_version = {v}
dovecot_storage_version = {v}
base_dir = {inner_base}
state_dir = {d}/state
log_path = {self._inner(self.log_path)}
protocols = imap pop3
listen = {", ".join(LOOPBACK)}
ssl = no
auth_allow_cleartext = yes
auth_mechanisms = plain login
login_trusted_networks =
default_login_user = {LOGIN_USER}
default_internal_user = {INTERNAL_USER}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
auth_username_format = %{{user}}
auth_username_chars =
mail_driver = maildir
mail_home = {d}/mail/%{{user | md5}}
mail_path = ~/Maildir
passdb passwd-file {{
  passwd_file_path = {d}/passwd
  default_password_scheme = PLAIN
}}
userdb static {{
  fields {{
    uid = {uid}
    gid = {gid}
    home = {d}/mail/%{{user | md5}}
    {TENANT_FIELD} = %{{user | domain}}
  }}
}}
{self._services_conf()}"""
        with open(self.conf_path, "w") as f:
            f.write(conf)

    # Queries -------------------------------------------------------------

    def who_rows(self):
        """Parses the root's `doveadm who -1` into one dict per connection,
        keyed by its header's column names (username service pid ip
        dest_ip, then the alternative username fields).

        2.4 pads the columns to the header's widths and leaves empty
        values blank (dest_ip, mostly), so values are cut at the columns'
        offsets; a value that overflows its column is caught by comparing
        with the whitespace-separated words.
        """
        res = self.doveadm("who", "-1")
        if res.returncode != 0:
            raise DovecotError(f"doveadm who -1 failed: {res.stderr}")
        lines = res.stdout.splitlines()
        if not lines or lines[0].split()[:5] != WHO_COLUMNS:
            raise DovecotError(f"unexpected doveadm who -1 output: "
                               f"{res.stdout!r}")
        columns = [(m.group(), m.start())
                   for m in re.finditer(r"\S+", lines[0])]
        rows = []
        for line in lines[1:]:
            row = {}
            for i, (name, start) in enumerate(columns):
                end = columns[i + 1][1] if i + 1 < len(columns) else None
                row[name] = line[start:end].strip()
            if [v for v in row.values() if v] != line.split():
                raise DovecotError(f"doveadm who -1 line out of its "
                                   f"columns: {line!r}")
            rows.append(row)
        return rows

    def who_groups(self):
        """Parses the root's `doveadm who` (without -1): one tuple per
        line, (username, count, service, (pids), (ips)). 2.4 groups by
        user and service, and pads its columns (a long name overflows
        its column)."""
        res = self.doveadm("who")
        lines = res.stdout.splitlines()
        if res.returncode != 0 or not lines or \
                lines[0].split() != WHO_GROUP_COLUMNS:
            raise DovecotError(f"doveadm who: {res.returncode} "
                               f"{res.stdout!r} {res.stderr!r}")
        groups = []
        for line in lines[1:]:
            m = WHO_GROUP_RE.fullmatch(line)
            if not m:
                raise DovecotError(f"doveadm who line {line!r}")
            groups.append((m["user"], int(m["count"]), m["service"],
                           tuple(int(p) for p in m["pids"].split()),
                           tuple(m["ips"].split())))
        return groups

    def kick(self, *args):
        """Runs the root's `doveadm kick ARGS`; returns the number in its
        "N connections kicked"."""
        res = self.doveadm("kick", *args)
        m = KICKED_RE.fullmatch(res.stdout)
        if res.returncode != 0 or not m:
            raise DovecotError(f"doveadm kick {' '.join(args)}: "
                               f"{res.returncode} {res.stdout!r} "
                               f"{res.stderr!r}")
        return int(m.group(1))

    def who(self):
        """`doveadm who -1` as a set of (user, service, pid, ip), as
        kgtest.dovecot.Dovecot.who returns it."""
        return {(r["username"], r["service"], int(r["pid"]), r["ip"])
                for r in self.who_rows()}

    def anvil_connections(self):
        """CONNECT-DUMP over anvil protocol 2; returns (alternative
        username fields, [AnvilConnection])."""
        with _anvil_connect(self.anvil_path) as s:
            data = anvil_handshake(s)
            s.sendall(b"CONNECT-DUMP\n")
            data = _anvil_recv(s, data, _dump_complete)
        return parse_connect_dump(data)

    def anvil_dump(self):
        """The connections in kgtest.dovecot.Dovecot.anvil_dump's form,
        [((service, ip, user), pid, refcount)], one entry per connection,
        so the session helpers work unchanged."""
        return [((c.service, c.ip, c.user), c.pid, 1)
                for c in self.anvil_connections()[1]]

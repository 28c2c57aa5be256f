#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A stand-in for Dovecot's anvil socket, for integration and fault tests.

It listens on a UNIX stream socket and answers each client that sends
"VERSION\tanvil\t1\t0\n" and "CONNECT-DUMP\n" with the bytes of a dump file,
as anvil would. The dump file is read afresh for each connection and sent
verbatim: a well-formed one ends with an empty line. After the dump the
connection stays open, as with anvil, until the client closes it.

The fake can stand in for Dovecot's master too, shaped as Dovecot is: the
process that creates the listening socket is the "master" (--comm gives
it a process name, "dovecot"); each --child NAME forks a child that takes
NAME as its process name ("imap"), as the master's service processes do;
and --serve-as NAME forks one more child, named NAME ("anvil"), that
accepts and answers on the socket, as Dovecot's anvil process does. A
client that asks the kernel who wrote the dump (SO_PASSCRED) then finds
that child, and the master as its parent. Without --serve-as the master
answers itself.
The children's pids go to "children" next to the socket, one per line, in
the order given. A child keeps the default action for SIGTERM and is not
reaped until the fake exits, so until then its pid stays its own and a
test can read from /proc whether, and by what signal, it ended.

Faults: --stall-after stops sending after that many bytes and holds the
connection; --close-after closes it after that many bytes. --count-file gets
one line appended per accepted connection, so a test can assert that anvil
was, or was never, contacted. The process, and each child, never lives
longer than --lifetime seconds (300 by default), so a stalled run cannot
hang a test suite; the children also die with the fake.

--protocol 2 stands in for Dovecot 2.4's anvil instead: on accept the
fake writes "VERSION\tanvil-server\t2\t0\n" first, reads the client's
"VERSION\tanvil-client\t2\t0\n" and the empty line after it, then
answers commands one at a time on that connection until the client
closes it: "CONNECT-DUMP" with the bytes of the dump file (read afresh
for each, and holding the whole of 2.4's reply: the header line, the
rows and the empty line), "KICK-USER\t..." with the line --kick-reply
("1" by default). Any other command, or another handshake, closes the
connection. --command-file gets each command line appended as received,
without its line feed, so that a test can assert what it was asked.
--after-kick names a dump file for every CONNECT-DUMP that comes after
a KICK-USER, as after a kick that took the connections. --stall-after and
--close-after cut each dump's bytes as for protocol 1; the connection
then answers nothing more.

The socket appears only once it is listening (bound under a temporary name,
then renamed), and only after the children have taken their names and the
children file is written, so a test may wait for the path to exist and then
read the pids and connect.
"""

import argparse
import ctypes
import os
import select
import signal
import socket
import sys
import threading
import time

REQUEST = b"VERSION\tanvil\t1\t0\nCONNECT-DUMP\n"
# Protocol 2: the server's first line, the client's (an empty line
# follows it), and the commands answered.
SERVER_HELLO_2 = b"VERSION\tanvil-server\t2\t0\n"
CLIENT_HELLO_2 = b"VERSION\tanvil-client\t2\t0"
DUMP_2 = b"CONNECT-DUMP"
KICK_2 = b"KICK-USER\t"
# A protocol-2 command line longer than this closes the connection.
LINE_MAX_2 = 1 << 20
HANDSHAKE_TIMEOUT = 10.0
CHILD_READY_TIMEOUT = 10.0
CHILDREN_FILE = "children"
# prctl(2) options; a process name holds at most 15 bytes.
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
COMM_MAX = 15


def comm(text):
    """A process name as prctl(PR_SET_NAME) takes it, never truncated."""
    name = os.fsencode(text)
    if not 0 < len(name) <= COMM_MAX:
        raise argparse.ArgumentTypeError(
            "a process name has 1 to %d bytes" % COMM_MAX)
    return name


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True, help="path to listen on")
    ap.add_argument("--dump", required=True,
                    help="file whose bytes to send, read per connection")
    ap.add_argument("--chunk", type=int, default=4096,
                    help="bytes per send (default 4096)")
    ap.add_argument("--stall-after", type=int, metavar="BYTES",
                    help="send this many bytes, then hold the connection")
    ap.add_argument("--close-after", type=int, metavar="BYTES",
                    help="send this many bytes, then close the connection")
    ap.add_argument("--count-file", metavar="F",
                    help="append one line per accepted connection")
    ap.add_argument("--once", action="store_true",
                    help="serve a single connection, then exit")
    ap.add_argument("--comm", type=comm, metavar="NAME",
                    help="this process's name, as /proc/PID/stat shows it")
    ap.add_argument("--child", type=comm, action="append", default=[],
                    metavar="NAME",
                    help="fork a child named NAME (repeatable); pids go to "
                         "%s next to the socket" % CHILDREN_FILE)
    ap.add_argument("--serve-as", type=comm, metavar="NAME",
                    help="answer from a child named NAME, not this process")
    ap.add_argument("--lifetime", type=float, default=300.0,
                    help="exit after this many seconds (default 300)")
    ap.add_argument("--protocol", type=int, choices=(1, 2), default=1,
                    help="anvil protocol: 1 (Dovecot 2.3, the default) or "
                         "2 (Dovecot 2.4)")
    ap.add_argument("--command-file", metavar="F",
                    help="protocol 2: append each command line received")
    ap.add_argument("--kick-reply", default="1", metavar="LINE",
                    help="protocol 2: the answer to KICK-USER (default 1)")
    ap.add_argument("--after-kick", metavar="F",
                    help="protocol 2: the dump file once a KICK-USER came")
    args = ap.parse_args(argv)
    if args.protocol != 2:
        for name in ("command_file", "after_kick"):
            if getattr(args, name) is not None:
                ap.error("--%s needs --protocol 2" %
                         name.replace("_", "-"))
    if "\n" in args.kick_reply:
        ap.error("--kick-reply must be one line")
    if args.chunk < 1:
        ap.error("--chunk must be at least 1")
    for name in ("stall_after", "close_after"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            ap.error("--%s must not be negative" % name.replace("_", "-"))
    if args.lifetime <= 0:
        ap.error("--lifetime must be positive")
    return args


def prctl(option, arg):
    libc = ctypes.CDLL(None, use_errno=True)
    zero = ctypes.c_ulong(0)
    if libc.prctl(ctypes.c_int(option), arg, zero, zero, zero) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def set_comm(name):
    """Names the calling thread; in the main thread, before any other
    starts, that is the name /proc/PID/stat gives the process."""
    prctl(PR_SET_NAME, ctypes.c_char_p(name))


class Server:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.lifetime
        self.count_lock = threading.Lock()
        self.accepted = 0
        # Protocol 2: set once a KICK-USER came, on any connection.
        self.kicked = threading.Event()
        self.command_lock = threading.Lock()

    def left(self):
        return max(0.0, self.deadline - time.monotonic())

    def timeout(self):
        # A zero timeout would make the socket non-blocking.
        return max(self.left(), 0.001)

    def record(self):
        with self.count_lock:
            self.accepted += 1
            if self.args.count_file:
                with open(self.args.count_file, "a") as f:
                    f.write("connection %d\n" % self.accepted)

    def read_request(self, conn):
        conn.settimeout(min(HANDSHAKE_TIMEOUT, self.timeout()))
        got = b""
        while len(got) < len(REQUEST):
            data = conn.recv(len(REQUEST) - len(got))
            if not data:
                return False
            got += data
        if got != REQUEST:
            print("fake_anvil: unexpected request %r" % got, file=sys.stderr)
            return False
        return True

    def read_dump(self, path=None):
        """Read per connection, so that a test can name in the dump the
        children's pids, known only once the fake runs."""
        with open(path or self.args.dump, "rb") as f:
            return f.read()

    def send_dump(self, conn, path=None):
        a = self.args
        dump = self.read_dump(path)
        limit = len(dump)
        for cut in (a.stall_after, a.close_after):
            if cut is not None:
                limit = min(limit, cut)
        conn.settimeout(self.timeout())
        for off in range(0, limit, a.chunk):
            conn.sendall(dump[off:min(off + a.chunk, limit)])

    def hold(self, conn):
        """Keep the connection open until the client closes it."""
        conn.settimeout(self.timeout())
        while conn.recv(4096):
            pass

    def serve(self, conn):
        with conn:
            try:
                if not self.read_request(conn):
                    return
                self.send_dump(conn)
                if self.args.close_after is not None:
                    return
                self.hold(conn)
            except OSError as err:
                # Timeouts, resets and broken pipes end this connection
                # only; the client sees whatever was sent.
                if err.filename is not None:
                    print("fake_anvil: %s" % err, file=sys.stderr)

    # Protocol 2 ----------------------------------------------------------

    def note_command(self, line):
        if not self.args.command_file:
            return
        with self.command_lock:
            with open(self.args.command_file, "ab") as f:
                f.write(line + b"\n")

    def dump_path_2(self):
        a = self.args
        if a.after_kick is not None and self.kicked.is_set():
            return a.after_kick
        return a.dump

    def answer_2(self, conn, line):
        """Answers one command; False when the connection is to end."""
        a = self.args
        if line == DUMP_2:
            self.send_dump(conn, self.dump_path_2())
            if a.close_after is not None:
                return False
            if a.stall_after is not None:
                self.hold(conn)
                return False
            return True
        if line.startswith(KICK_2):
            # Set before the answer: a dump the client asks for once it
            # has read it comes after the kick.
            self.kicked.set()
            conn.sendall(a.kick_reply.encode() + b"\n")
            return True
        print("fake_anvil: unexpected command %r" % line, file=sys.stderr)
        return False

    def serve_2(self, conn):
        with conn:
            try:
                conn.settimeout(min(HANDSHAKE_TIMEOUT, self.timeout()))
                conn.sendall(SERVER_HELLO_2)
                lines = LineReader(conn)
                hello = (lines.next(), lines.next())
                if hello != (CLIENT_HELLO_2, b""):
                    print("fake_anvil: unexpected handshake %r" % (hello,),
                          file=sys.stderr)
                    return
                conn.settimeout(self.timeout())
                while True:
                    line = lines.next()
                    if line is None:
                        return
                    self.note_command(line)
                    if not self.answer_2(conn, line):
                        return
            except OSError as err:
                if err.filename is not None:
                    print("fake_anvil: %s" % err, file=sys.stderr)


class LineReader:
    """Lines from a socket, without their line feed; None once the client
    has closed it (or sent a line over LINE_MAX_2 bytes)."""

    def __init__(self, conn):
        self.conn = conn
        self.buf = b""

    def next(self):
        while b"\n" not in self.buf:
            if len(self.buf) > LINE_MAX_2:
                print("fake_anvil: a command line is too long",
                      file=sys.stderr)
                return None
            data = self.conn.recv(4096)
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line


def child_main(name, parent, ready_fd, deadline):
    """A child named name: reports once /proc shows the name, then sleeps
    until SIGTERM (default action), the death of the fake, or the end of
    the lifetime. Never returns into the fake's code."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL))
        # The fake may have died before the line above took effect.
        if os.getppid() == parent:
            set_comm(name)
            os.write(ready_fd, b".")
            time.sleep(max(0.0, deadline - time.monotonic()))
            code = 0
    finally:
        os._exit(code)


def wait_ready(fd, count, timeout):
    """Waits for one byte from each of count children."""
    end = time.monotonic() + timeout
    got = 0
    while got < count:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError("a child did not take its name in time")
        data = os.read(fd, count - got)
        if not data:
            raise RuntimeError("a child exited before taking its name")
        got += len(data)


def start_children(names, deadline, pids):
    """Forks a child per name, appending each pid to pids at once so that
    stop_children() reaps it whatever happens next."""
    parent = os.getpid()
    ready_r, ready_w = os.pipe()
    try:
        for name in names:
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                child_main(name, parent, ready_w, deadline)
            pids.append(pid)
        os.close(ready_w)
        ready_w = -1
        wait_ready(ready_r, len(pids), CHILD_READY_TIMEOUT)
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)


def stop_children(pids):
    """SIGKILL ends a child at once, and an unreaped child's pid cannot
    have been reused, so both steps are safe and bounded."""
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def write_children(sock_path, pids):
    path = os.path.join(os.path.dirname(os.path.abspath(sock_path)),
                        CHILDREN_FILE)
    with open(path, "w") as f:
        f.write("".join("%d\n" % pid for pid in pids))


def listen(path):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(tmp)
    s.listen(64)
    os.rename(tmp, path)
    return s


def serve_until_done(server, lsock):
    threads = []
    while server.left() > 0:
        lsock.settimeout(server.timeout())
        try:
            conn, _ = lsock.accept()
        except socket.timeout:
            break
        server.record()
        serve = server.serve_2 if server.args.protocol == 2 else server.serve
        t = threading.Thread(target=serve, args=(conn,), daemon=True)
        t.start()
        threads.append(t)
        if server.args.once:
            break
    for t in threads:
        t.join(server.left())


def serve_from_child(server, lsock):
    """Forks the child that answers (named --serve-as) and waits, bounded
    by the lifetime, until it ends; it dies with the fake."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL))
            if os.getppid() == parent:
                set_comm(server.args.serve_as)
                serve_until_done(server, lsock)
                code = 0
        finally:
            os._exit(code)
    try:
        while server.left() > 0:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
            time.sleep(0.05)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        except ProcessLookupError:
            pass


def run(args):
    server = Server(args)
    if args.comm is not None:
        set_comm(args.comm)
    children = []
    try:
        if args.child:
            start_children(args.child, server.deadline, children)
            write_children(args.socket, children)
        lsock = listen(args.socket)
        try:
            if args.serve_as is not None:
                serve_from_child(server, lsock)
            else:
                serve_until_done(server, lsock)
        finally:
            lsock.close()
            try:
                os.unlink(args.socket)
            except FileNotFoundError:
                pass
    finally:
        stop_children(children)


def main(argv):
    args = parse_args(argv)
    # SIGTERM from a test's cleanup must still remove the socket and reap
    # the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

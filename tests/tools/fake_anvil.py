#!/usr/bin/env python3
"""A stand-in for Dovecot 2.3's anvil socket, for integration and fault tests.

It listens on a UNIX stream socket and answers each client that sends
"VERSION\tanvil\t1\t0\n" and "CONNECT-DUMP\n" with the bytes of a dump file,
as anvil would. The dump file is sent verbatim: a well-formed one ends with
an empty line. After the dump the connection stays open, as with anvil,
until the client closes it.

Faults: --stall-after stops sending after that many bytes and holds the
connection; --close-after closes it after that many bytes. --count-file gets
one line appended per accepted connection, so a test can assert that anvil
was, or was never, contacted. The process never lives longer than
--lifetime seconds (300 by default), so a stalled run cannot hang a test
suite.

The socket appears only once it is listening (bound under a temporary name,
then renamed), so a test may wait for the path to exist and then connect.
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time

REQUEST = b"VERSION\tanvil\t1\t0\nCONNECT-DUMP\n"
HANDSHAKE_TIMEOUT = 10.0


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True, help="path to listen on")
    ap.add_argument("--dump", required=True, help="file whose bytes to send")
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
    ap.add_argument("--master-pid-file", type=int, metavar="PID",
                    help="write PID to master.pid next to the socket")
    ap.add_argument("--lifetime", type=float, default=300.0,
                    help="exit after this many seconds (default 300)")
    args = ap.parse_args(argv)
    if args.chunk < 1:
        ap.error("--chunk must be at least 1")
    for name in ("stall_after", "close_after"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            ap.error("--%s must not be negative" % name.replace("_", "-"))
    if args.lifetime <= 0:
        ap.error("--lifetime must be positive")
    return args


class Server:
    def __init__(self, args):
        self.args = args
        with open(args.dump, "rb") as f:
            self.dump = f.read()
        self.deadline = time.monotonic() + args.lifetime
        self.count_lock = threading.Lock()
        self.accepted = 0

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

    def send_dump(self, conn):
        a = self.args
        limit = len(self.dump)
        for cut in (a.stall_after, a.close_after):
            if cut is not None:
                limit = min(limit, cut)
        conn.settimeout(self.timeout())
        for off in range(0, limit, a.chunk):
            conn.sendall(self.dump[off:min(off + a.chunk, limit)])

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
            except OSError:
                # Timeouts, resets and broken pipes end this connection
                # only; the client sees whatever was sent.
                pass


def listen(path):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(tmp)
    s.listen(64)
    os.rename(tmp, path)
    return s


def write_master_pid(sock_path, pid):
    path = os.path.join(os.path.dirname(os.path.abspath(sock_path)),
                        "master.pid")
    with open(path, "w") as f:
        f.write("%d\n" % pid)


def run(args):
    server = Server(args)
    if args.master_pid_file is not None:
        write_master_pid(args.socket, args.master_pid_file)
    lsock = listen(args.socket)
    threads = []
    try:
        while server.left() > 0:
            lsock.settimeout(server.timeout())
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                break
            server.record()
            t = threading.Thread(target=server.serve, args=(conn,),
                                 daemon=True)
            t.start()
            threads.append(t)
            if args.once:
                break
        for t in threads:
            t.join(server.left())
    finally:
        lsock.close()
        try:
            os.unlink(args.socket)
        except FileNotFoundError:
            pass


def main(argv):
    args = parse_args(argv)
    # SIGTERM from a test's cleanup must still remove the socket.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

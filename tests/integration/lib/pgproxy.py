#!/usr/bin/env python3
"""A PostgreSQL wire-protocol proxy that cuts a daemon off at a chosen moment.

The tests' partition: each node (daemon) gets its own loopback TCP port; its
connections are forwarded to the server's Unix socket, and the frontend's
messages are parsed ('P'arse, 'B'ind, 'E'xecute, 'S'ync, 'Q'uery...) so that
a cut can be made at a protocol moment:

  before-sync   a commit's statements and its fence have reached the server,
                its Sync has not (the server holds the transaction open)
  before-fence  a commit's statements have, its fence has not
  mid-renewal   a lease renewal's UPDATE has, its Sync has not
  now           at once

A cut closes the client side of every connection of the node and leaves the
server side open and silent, as a partition does (the server sees nothing
end); while the node is cut, its new connections are closed at once.
"freeze NODE" is the other kind of partition: nothing is forwarded either
way and nothing is closed (both sides hear silence), and new connections are
accepted and never answered, until "heal NODE" closes them all. The
statements are told apart by their SQL text, from the Parse messages.

Control: a Unix socket, one command per line, answered with one line:
  arm NODE MOMENT    cut NODE at the next MOMENT (answer "ok")
  freeze NODE        silence NODE's connections, old and new, without closing any
  heal NODE          forward NODE's new connections again (closing the frozen ones)
  state NODE         "open", "armed MOMENT" or "cut N" (N: cuts so far)
  cuts NODE          the wall-clock time (ns) of the last cut, or 0
  count NODE         how many times NODE was cut

Usage: pgproxy.py --upstream /path/.s.PGSQL.5432 --control /path/ctl.sock
                  --ports-file FILE --log FILE NODE...
writes "NODE PORT" lines into FILE once every port listens. Python's standard
library only.
"""
import argparse
import os
import socket
import struct
import sys
import threading
import time

MATCH = {
    "fence": b"ew_fence(",
    "renew": b"UPDATE lease SET renewed_at",
}
SSL_CODES = (80877103, 80877104)   # SSLRequest, GSSENCRequest: answered with one byte, then the startup


class Node:
    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.armed = None          # the moment of the next cut
        self.cut = False
        self.frozen = False
        self.cuts = 0
        self.cut_ns = 0
        self.conns = []


class Conn:
    def __init__(self, node, client, server, n):
        self.node = node
        self.client = client
        self.server = server
        self.n = n
        self.dead = False          # the client side is closed: nothing more is forwarded
        self.stmts = {}            # prepared statement name -> SQL text
        self.pending = None        # what the current pipeline group holds: "fence" or "renew" bound


LOG = None
LOG_LOCK = threading.Lock()


def log(msg):
    with LOG_LOCK:
        if LOG:
            LOG.write("%.3f %s\n" % (time.time(), msg))
            LOG.flush()


def cstring(buf, at):
    end = buf.index(b"\0", at)
    return buf[at:end], end + 1


def cut_node(node, why):
    """Closes the client side of every connection of node; their server sides stay open and silent."""
    with node.lock:
        node.cut = True
        node.armed = None
        node.cuts += 1
        node.cut_ns = time.time_ns()
        conns = list(node.conns)
    for c in conns:
        c.dead = True
        try:
            c.client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        c.client.close()
    log("cut %s (%s): %d connections" % (node.name, why, len(conns)))


def recv_exact(sock, n, buf):
    while len(buf) < n:
        d = sock.recv(65536)
        if not d:
            return None
        buf += d
    return buf


def client_to_server(c):
    """Forwards the frontend's messages one by one, cutting where the node is armed to."""
    node = c.node
    buf = b""
    started = False
    try:
        while not c.dead:
            if not started:
                buf = recv_exact(c.client, 4, buf)
                if buf is None:
                    break
                (length,) = struct.unpack("!I", buf[:4])
                buf = recv_exact(c.client, length, buf)
                if buf is None:
                    break
                msg, buf = buf[:length], buf[length:]
                (code,) = struct.unpack("!I", msg[4:8])
                started = code not in SSL_CODES
                c.server.sendall(msg)
                continue
            buf = recv_exact(c.client, 5, buf)
            if buf is None:
                break
            kind = buf[0:1]
            (length,) = struct.unpack("!I", buf[1:5])
            buf = recv_exact(c.client, 1 + length, buf)
            if buf is None:
                break
            msg, buf = buf[:1 + length], buf[1 + length:]
            body = msg[5:]
            if node.frozen:
                continue           # into the void
            moment = node.armed
            if kind == b"P":
                name, at = cstring(body, 0)
                sql, _ = cstring(body, at)
                c.stmts[name] = sql
            elif kind == b"B":
                _, at = cstring(body, 0)
                stmt, _ = cstring(body, at)
                sql = c.stmts.get(stmt, b"")
                what = next((k for k, v in MATCH.items() if v in sql), None)
                if what == "fence" and moment == "before-fence":
                    cut_node(node, "before the fence")
                    break
                if what:
                    c.pending = what
            elif kind == b"S":
                if (c.pending == "fence" and moment == "before-sync") or (c.pending == "renew" and moment == "mid-renewal"):
                    cut_node(node, "before the Sync of a %s" % ("commit" if c.pending == "fence" else "renewal"))
                    break
                c.pending = None
            elif kind == b"X":
                pass
            c.server.sendall(msg)
    except OSError:
        pass
    if not c.dead and not node.frozen:
        # The client went (its own close): the server hears of it, as without the proxy (not across a partition).
        c.dead = True
        try:
            c.server.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def server_to_client(c):
    """Forwards the server's answers; after a cut they go nowhere (the server's side stays open)."""
    try:
        while True:
            d = c.server.recv(65536)
            if not d:
                break
            if not c.dead and not c.node.frozen:
                try:
                    c.client.sendall(d)
                except OSError:
                    pass
    except OSError:
        pass
    if not c.dead and not c.node.frozen:
        try:
            c.client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def drain(c):
    """A connection made while frozen: what the client sends goes nowhere."""
    try:
        while c.client.recv(65536):
            pass
    except OSError:
        pass


def serve_node(node, lsock, upstream):
    n = 0
    while True:
        try:
            client, _ = lsock.accept()
        except OSError:
            return
        n += 1
        if node.frozen:
            # Accepted (the kernel would), never answered: the client's connect timeout decides.
            c = Conn(node, client, None, n)
            with node.lock:
                node.conns.append(c)
            threading.Thread(target=drain, args=(c,), daemon=True).start()
            log("%s: connection %d held silent (frozen)" % (node.name, n))
            continue
        if node.cut:
            # Partitioned: nothing gets through.
            client.close()
            log("%s: connection %d refused (cut)" % (node.name, n))
            continue
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.connect(upstream)
        except OSError as e:
            log("%s: upstream: %s" % (node.name, e))
            client.close()
            server.close()
            continue
        c = Conn(node, client, server, n)
        with node.lock:
            node.conns = [x for x in node.conns if not x.dead] + [c]
        log("%s: connection %d" % (node.name, n))
        threading.Thread(target=client_to_server, args=(c,), daemon=True).start()
        threading.Thread(target=server_to_client, args=(c,), daemon=True).start()


def control(path, nodes):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    while True:
        conn, _ = s.accept()
        f = conn.makefile("rwb", buffering=0)
        for line in f:
            words = line.decode().split()
            answer = "error: " + line.decode().strip()
            node = nodes.get(words[1]) if len(words) > 1 else None
            if node and words[0] == "arm" and len(words) == 3:
                if words[2] == "now":
                    cut_node(node, "now")
                else:
                    node.armed = words[2]
                answer = "ok"
            elif node and words[0] == "freeze":
                node.frozen = True
                log("freeze %s" % node.name)
                answer = "ok"
            elif node and words[0] == "heal":
                with node.lock:
                    frozen = [c for c in node.conns if node.frozen and not c.dead]
                    node.cut = False
                    node.frozen = False
                    node.armed = None
                # What was frozen is broken for good (a long partition ends TCP connections too).
                for c in frozen:
                    c.dead = True
                    for sk in (c.client, c.server):
                        if sk:
                            try:
                                sk.shutdown(socket.SHUT_RDWR)
                            except OSError:
                                pass
                            sk.close()
                log("heal %s (%d frozen connections closed)" % (node.name, len(frozen)))
                answer = "ok"
            elif node and words[0] == "state":
                answer = ("cut %d" % node.cuts) if node.cut else "frozen" if node.frozen else \
                    ("armed " + node.armed) if node.armed else "open"
            elif node and words[0] == "cuts":
                answer = str(node.cut_ns)
            elif node and words[0] == "count":
                answer = str(node.cuts)
            f.write((answer + "\n").encode())
        conn.close()


def main():
    global LOG
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--ports-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("nodes", nargs="+")
    a = p.parse_args()
    LOG = open(a.log, "a")
    nodes = {}
    lines = []
    for name in a.nodes:
        node = Node(name)
        nodes[name] = node
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        lines.append("%s %d\n" % (name, ls.getsockname()[1]))
        threading.Thread(target=serve_node, args=(node, ls, a.upstream), daemon=True).start()
    threading.Thread(target=control, args=(a.control, nodes), daemon=True).start()
    # The control socket first, then the ports: whoever reads the file may use both.
    while not os.path.exists(a.control):
        time.sleep(0.01)
    tmp = a.ports_file + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.rename(tmp, a.ports_file)
    log("listening: " + " ".join(l.strip() for l in lines))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

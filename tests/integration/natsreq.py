"""A minimal NATS client for the cluster tests: one request, one reply, over
the plain text protocol (CONNECT, SUB, PUB, MSG/HMSG), so tests can ask
JetStream's API ($JS.API.*) what a stream holds without a NATS library."""

import json
import socket
import time


class NatsError(Exception):
    pass


def _read_line(sock, buf):
    while b"\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise NatsError("NATS closed the connection")
        buf += chunk
    line, rest = buf.split(b"\r\n", 1)
    return line, rest


def _read_exact(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise NatsError("NATS closed the connection")
        buf += chunk
    return buf[:n], buf[n:]


def request(port, subject, payload=b"", timeout=5.0):
    """Sends payload to subject with a reply inbox; returns the reply's
    (headers bytes or None, body bytes). NatsError on timeout or error."""
    inbox = "_INBOX.midgetest.%d" % int(time.monotonic() * 1e6)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        buf = b""
        line, buf = _read_line(sock, buf)  # INFO
        if not line.startswith(b"INFO"):
            raise NatsError("no INFO from NATS: %r" % line)
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1}
        sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        sock.sendall(b"SUB " + inbox.encode() + b" 1\r\n")
        sock.sendall(b"PUB %s %s %d\r\n%s\r\nPING\r\n" % (subject.encode(), inbox.encode(),
                                                         len(payload), payload))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line, buf = _read_line(sock, buf)
            if line.startswith(b"PING"):
                sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise NatsError(line.decode())
            elif line.startswith(b"MSG "):
                n = int(line.split()[-1])
                body, buf = _read_exact(sock, buf, n + 2)
                return None, body[:n]
            elif line.startswith(b"HMSG "):
                parts = line.split()
                hlen, total = int(parts[-2]), int(parts[-1])
                data, buf = _read_exact(sock, buf, total + 2)
                headers, body = data[:hlen], data[hlen:total]
                if b" 503" in headers.split(b"\r\n")[0]:
                    raise NatsError("no responders for %s" % subject)
                return headers, body
        raise NatsError("no reply on %s within %.1fs" % (subject, timeout))


def js_api(port, what, body=None, timeout=5.0):
    """A JetStream API request ($JS.API.<what>); returns the decoded JSON answer."""
    payload = json.dumps(body).encode() if body is not None else b""
    return json.loads(request(port, "$JS.API." + what, payload, timeout)[1])

# SPDX-License-Identifier: MIT
"""Proves the wire is standard: a client built from proto/potad.proto alone,
with the stock Python protobuf library, talks to the real daemon.

The Python code is generated at test time with `protoc --python_out`, so the
test follows the .proto and nothing else.  Framing is protobuf's delimited
form: a varint length, then the message.  The library's own varint helpers
(google.protobuf.internal) are used when they exist, else a few lines here.

Usage: stock_client.py --proto PATH/potad.proto --daemon PATH/potad
Prints one line per failed check and a final "N passed, M failed"; exits 0
only if nothing failed, 77 if the generated code cannot be loaded by this
protobuf runtime (a mismatched install, not a fault of the schema).
"""

import argparse
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

try:
    from google.protobuf.internal.decoder import _DecodeVarint32
    from google.protobuf.internal.encoder import _VarintBytes
except ImportError:  # not part of the public API; fall back to our own
    _DecodeVarint32 = None
    _VarintBytes = None

TIMEOUT = 10.0
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def varint_bytes(n):
    if _VarintBytes is not None:
        return _VarintBytes(n)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint_decode(buf):
    """(value, bytes used), or None if buf holds only part of a varint."""
    if _DecodeVarint32 is not None and len(buf) >= 10:
        return _DecodeVarint32(buf, 0)
    value = 0
    for i, b in enumerate(buf[:10]):
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value, i + 1
    if len(buf) >= 10:
        raise ValueError("varint longer than 10 bytes")
    return None


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def eq(self, what, actual, expected):
        if actual == expected:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s: expected %r, got %r" % (what, expected, actual))

    def true(self, what, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s %s" % (what, detail))


class Conn:
    """One connection: delimited Requests out, ServerMessages in."""

    def __init__(self, pb, path):
        self.pb = pb
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.buf = bytearray()
        self.next_id = 1

    def close(self):
        self.sock.close()

    def frame(self, req):
        body = req.SerializeToString()
        return varint_bytes(len(body)) + body

    def send(self, req):
        self.sock.sendall(self.frame(req))

    def recv(self):
        while True:
            head = varint_decode(bytes(self.buf[:10]))
            if head is not None:
                n, k = head
                if len(self.buf) - k >= n:
                    msg = self.pb.ServerMessage()
                    msg.ParseFromString(bytes(self.buf[k:k + n]))
                    del self.buf[:k + n]
                    return msg
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("the daemon closed the connection")
            self.buf += chunk

    def response(self):
        while True:
            msg = self.recv()
            if msg.WhichOneof("msg") == "response":
                return msg.response

    def call(self, *ops):
        req = self.pb.Request(id=self.next_id, ops=list(ops))
        self.next_id += 1
        self.send(req)
        resp = self.response()
        if resp.id != req.id or len(resp.results) != len(ops):
            raise RuntimeError("request %d answered as %d with %d results"
                               % (req.id, resp.id, len(resp.results)))
        return resp.results


def load_schema(proto, outdir):
    """protoc --python_out, then import the generated module."""
    cmd = ["protoc", "--python_out=" + outdir,
           "--proto_path=" + os.path.dirname(os.path.abspath(proto)),
           os.path.abspath(proto)]
    rc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if rc.returncode != 0:
        print("FAIL: %s:\n%s" % (" ".join(cmd), rc.stdout.decode()))
        sys.exit(1)
    sys.path.insert(0, outdir)
    name = os.path.splitext(os.path.basename(proto))[0] + "_pb2"
    try:
        return importlib.import_module(name)
    except Exception as e:  # a protoc / runtime version mismatch
        print("SKIP: the code protoc generated does not load with this "
              "google.protobuf: %s" % e)
        sys.exit(77)


def start_daemon(daemon, tmp):
    path = os.path.join(tmp, "potad.sock")
    log = open(os.path.join(tmp, "potad.log"), "w")
    proc = subprocess.Popen([daemon, "--foreground", "--socket", path,
                             "--state-dir", os.path.join(tmp, "state")],
                            stdout=log, stderr=log)
    deadline = time.monotonic() + TIMEOUT
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.close()
            return proc, path
        except OSError:
            s.close()
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError("the daemon did not serve on %s; its log:\n%s"
                               % (path, open(log.name).read()))
        time.sleep(0.01)


def run(pb, path, ck):
    St = pb.Status
    ok = St.Value("OK")
    c = Conn(pb, path)

    def op(**kw):
        return pb.Op(**kw)

    # hello
    r = c.call(op(hello=pb.Hello(protocol=1, client="stock_client.py")))[0]
    ck.eq("hello status", St.Name(r.status), "OK")
    ck.eq("hello body", r.WhichOneof("body"), "hello")
    ck.eq("hello protocol", r.hello.protocol, 1)
    ck.eq("hello uid", r.hello.uid, os.geteuid())
    ck.true("hello capabilities", "alloc" in r.hello.capabilities,
            list(r.hello.capabilities))

    # list spaces
    r = c.call(op(list_spaces=pb.ListSpaces()))[0]
    ck.eq("list status", St.Name(r.status), "OK")
    names = [s.name for s in r.spaces.spaces]
    ck.true("list has default", "default" in names, names)
    if "default" in names:
        d = r.spaces.spaces[names.index("default")]
        ck.eq("default kind", pb.SpaceKind.Name(d.kind), "RANGE")
        ck.eq("default size", d.size, GiB)
        ck.eq("default granule", d.granule, 4 * KiB)
        ck.eq("default free", d.free_bytes, GiB)

    # aligned alloc, lookup, free
    r = c.call(op(alloc=pb.Alloc(space="default", size=64 * KiB,
                                 align=MiB, label="py", tag=5)))[0]
    ck.eq("alloc status", St.Name(r.status), "OK")
    e = r.extent
    ck.eq("alloc alignment", e.offset % MiB, 0)
    ck.eq("alloc length", e.length, 64 * KiB)
    ck.eq("alloc label", e.label, "py")
    ck.eq("alloc tag", e.tag, 5)
    ck.eq("alloc owner", e.owner_uid, os.geteuid())
    r = c.call(op(lookup=pb.Lookup(space="default",
                                   offset=e.offset + 1000)))[0]
    ck.eq("lookup status", St.Name(r.status), "OK")
    ck.eq("lookup handle", r.extent.handle, e.handle)
    ck.eq("lookup offset", r.extent.offset, e.offset)
    r = c.call(op(free=pb.Free(space="default", handle=e.handle)))[0]
    ck.eq("free status", St.Name(r.status), "OK")
    ck.eq("free handle", r.extent.handle, e.handle)
    r = c.call(op(free=pb.Free(space="default", handle=e.handle)))[0]
    ck.eq("double free status", St.Name(r.status), "STALE")
    ck.true("double free message", r.message != "")
    r = c.call(op(lookup=pb.Lookup(space="default", offset=e.offset)))[0]
    ck.eq("lookup after free", St.Name(r.status), "NOT_FOUND")

    # a batch: one Request, one Result per op, in order
    ops = [op(alloc=pb.Alloc(space="default", size=8 * KiB, tag=i))
           for i in range(10)]
    ops.insert(5, op(alloc=pb.Alloc(space="default", size=0)))
    ops.append(op(space_stat=pb.SpaceStat(name="default")))
    res = c.call(*ops)
    ck.eq("batch results", len(res), 12)
    tags = [x.extent.tag for x in res[:5] + res[6:11]]
    ck.eq("batch order", tags, list(range(10)))
    ck.eq("batch statuses", [St.Name(x.status) for x in res],
          ["OK"] * 5 + ["INVALID"] + ["OK"] * 6)
    ck.eq("batch stat extents", res[11].space.extents, 10)
    frees = [op(free=pb.Free(space="default", handle=x.extent.handle))
             for x in res[:5] + res[6:11]]
    ck.eq("batch free", [x.status for x in c.call(*frees)], [ok] * 10)

    # a pipelined burst: every request written before any answer is read
    burst = b"".join(c.frame(pb.Request(id=1000 + i, ops=[
        op(alloc=pb.Alloc(space="default", size=4 * KiB, tag=i))]))
        for i in range(200))
    c.sock.sendall(burst)
    got = [c.response() for _ in range(200)]
    ck.eq("burst ids", [g.id for g in got], [1000 + i for i in range(200)])
    ck.eq("burst statuses", set(g.results[0].status for g in got), {ok})
    ck.eq("burst tags", [g.results[0].extent.tag for g in got],
          list(range(200)))
    offsets = [g.results[0].extent.offset for g in got]
    ck.eq("burst distinct", len(set(offsets)), 200)
    burst = b"".join(c.frame(pb.Request(id=2000 + i, ops=[
        op(free=pb.Free(space="default", handle=g.results[0].extent.handle))
    ])) for i, g in enumerate(got))
    c.sock.sendall(burst)
    got = [c.response() for _ in range(200)]
    ck.eq("burst free ids", [g.id for g in got],
          [2000 + i for i in range(200)])
    ck.eq("burst free statuses", set(g.results[0].status for g in got), {ok})

    # garbage in a valid frame: refused with id 0, the connection lives on
    c.sock.sendall(varint_bytes(3) + b"\xff\xff\xff")
    resp = c.response()
    ck.eq("garbage id", resp.id, 0)
    ck.eq("garbage status", St.Name(resp.status), "INVALID")
    r = c.call(op(space_stat=pb.SpaceStat(name="default")))[0]
    ck.eq("final free bytes", r.space.free_bytes, GiB)
    ck.eq("final extents", r.space.extents, 0)
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto", required=True)
    ap.add_argument("--daemon", required=True)
    args = ap.parse_args()
    ck = Checks()
    tmp = tempfile.mkdtemp(prefix="potad-stock.")
    proc = None
    try:
        pb = load_schema(args.proto, tmp)
        proc, path = start_daemon(args.daemon, tmp)
        try:
            run(pb, path, ck)
        except Exception as e:
            ck.true("the session ran to the end", False,
                    "(%s: %s)" % (type(e).__name__, e))
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = "still running"
        ck.eq("daemon exit status after SIGTERM", rc, 0)
        ck.true("socket removed at exit", not os.path.exists(path))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if ck.failed and os.path.exists(os.path.join(tmp, "potad.log")):
            print("daemon log:\n" +
                  open(os.path.join(tmp, "potad.log")).read())
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (ck.passed, ck.failed))
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())

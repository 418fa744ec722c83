#!/usr/bin/env python3
"""Writes the HTTP/2 seed corpus (fuzz/corpus-h2/) in h2_fuzz's input format (see h2_fuzz.cc):
a limits byte, then ops: 0x10 client bytes / 0x13 server bytes + length byte + bytes; 0x17
close, 0x1F reset. Each seed also exists split byte by byte."""
import os
import struct

CLIENT, SERVER, CLOSE, RESET = 0x10, 0x13, 0x17, 0x1F
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONT = range(10)
ES, EH, PAD, PRIO = 0x1, 0x4, 0x8, 0x20


def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload


def s(v):
    return bytes([len(v)]) + v


def lit(index, value):  # literal without indexing, indexed name (index < 15)
    return bytes([index]) + s(value)


def get(path):
    return b"\x82\x86" + lit(4, path) + lit(1, b"example")


def grpc_req(path):
    return b"\x83\x86" + lit(4, path) + lit(1, b"h") + b"\x0f\x10" + s(b"application/grpc")


SEEDS = {
    "h2_get": [(CLIENT, PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, ES | EH, 1, get(b"/a/1"))),
               (SERVER, frame(SETTINGS, 0, 0) + frame(SETTINGS, 1, 0) + frame(HEADERS, EH, 1, b"\x88")
                + frame(DATA, ES, 1, b"hello")), CLOSE],
    "h2_interleaved": [
        (CLIENT, PREFACE + frame(SETTINGS, 0, 0, b"\x00\x01\x00\x00\x20\x00")
         + frame(HEADERS, PAD | PRIO, 1, b"\x02" + b"\x00\x00\x00\x00\x10" + get(b"/x")[:4] + b"\0\0")
         + frame(CONT, EH, 1, get(b"/x")[4:]) + frame(HEADERS, ES | EH, 3, get(b"/y"))),
        (SERVER, frame(SETTINGS, 0, 0, b"\x00\x01\x00\x00\x20\x00") + frame(HEADERS, EH, 3, b"\x8d")
         + frame(HEADERS, EH, 1, b"\x8e") + frame(DATA, PAD, 1, b"\x01ab\x00")),
        (CLIENT, frame(DATA, ES, 1, b"body") + frame(WINDOW, 0, 0, b"\x00\x00\x10\x00")
         + frame(PRIORITY, 0, 5, b"\x00\x00\x00\x01\x10")),
        (SERVER, frame(DATA, ES, 3, b"") + frame(DATA, ES, 1, b"x") + frame(PING, 0, 0, b"12345678")),
        RESET],
    "h2_grpc": [
        (CLIENT, PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, EH, 1, grpc_req(b"/pkg.Svc/Do"))
         + frame(DATA, ES, 1, b"\0\0\0\0\1x") + frame(HEADERS, EH, 3, grpc_req(b"/pkg.Svc/Err"))
         + frame(DATA, ES, 3, b"\0\0\0\0\0")),
        (SERVER, frame(SETTINGS, 0, 0) + frame(HEADERS, EH, 1, b"\x88\x0f\x10" + s(b"application/grpc"))
         + frame(DATA, 0, 1, b"\0\0\0\0\1y") + frame(HEADERS, ES | EH, 1, b"\x00" + s(b"grpc-status") + s(b"0"))
         + frame(HEADERS, ES | EH, 3, b"\x88\x00" + s(b"grpc-status") + s(b"5"))), CLOSE],
    "h2_rst_goaway": [
        (CLIENT, PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, ES | EH, 1, get(b"/1"))
         + frame(HEADERS, ES | EH, 3, get(b"/3")) + frame(HEADERS, ES | EH, 5, get(b"/5"))),
        (SERVER, frame(SETTINGS, 0, 0) + frame(RST, 0, 1, b"\0\0\0\2")
         + frame(GOAWAY, 0, 0, b"\0\0\0\3\0\0\0\0dbg") + frame(HEADERS, ES | EH, 3, b"\x88")), CLOSE],
    "h2c_upgrade": [
        (CLIENT, b"GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"),
        (SERVER, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
         + frame(SETTINGS, 0, 0) + frame(HEADERS, EH, 1, b"\x88")),
        (CLIENT, PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, ES | EH, 3, get(b"/next"))),
        (SERVER, frame(DATA, ES, 1, b"ok") + frame(HEADERS, ES | EH, 3, b"\x89")), CLOSE],
}


def prog(steps, split):
    out = bytearray([0])
    for step in steps:
        if isinstance(step, int):
            out.append(step)
            continue
        op, data = step
        for i in range(0, len(data), split):
            piece = data[i:i + split]
            out += bytes([op, len(piece)]) + piece
    return bytes(out)


def main():
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-h2")
    os.makedirs(d, exist_ok=True)
    for name, steps in SEEDS.items():
        for suffix, split in (("", 200), ("_bytewise", 1)):
            with open(os.path.join(d, name + suffix), "wb") as f:
                f.write(prog(steps, split))


if __name__ == "__main__":
    main()

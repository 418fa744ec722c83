#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/) in tracker_fuzz's input format: a limits byte, then
ops: 0x10|dir (0 client, 3 server) + length byte + bytes; 0x16 client EOF... see tracker_fuzz.cc.
"""
import os

CLIENT, SERVER = 0x10, 0x13
SERVER_EOF, CLIENT_EOF, CLOSE, RESET = 0x16, 0x1E, 0x17, 0x1F


def prog(steps, limits=0, split=60):
    out = bytearray([limits])
    for step in steps:
        if isinstance(step, int):
            out.append(step)
            continue
        op, data = step
        for i in range(0, len(data), split):
            piece = data[i:i + split]
            out += bytes([op, len(piece)]) + piece
    return bytes(out)


SEEDS = {
    "get_keepalive": [(CLIENT, b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"),
                      (SERVER, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
                      (CLIENT, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"),
                      (SERVER, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), CLOSE],
    "pipelined": [(CLIENT, b"GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"),
                  (SERVER, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
                           b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                           b"HTTP/1.1 204 No Content\r\n\r\n")],
    "chunked_post": [(CLIENT, b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                              b"Expect: 100-continue\r\n\r\n"),
                     (SERVER, b"HTTP/1.1 100 Continue\r\n\r\n"),
                     (CLIENT, b"5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n"),
                     (SERVER, b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"3\r\nabc\r\n0\r\n\r\n")],
    "close_delimited": [(CLIENT, b"GET /c HTTP/1.0\r\n\r\n"),
                        (SERVER, b"HTTP/1.0 200 OK\r\n\r\nbody until close"), SERVER_EOF, CLOSE],
    "upgrade": [(CLIENT, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                         b"\x81\x05hello"),
                (SERVER, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi")],
    "upgrade_refused": [(CLIENT, b"GET /ws HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
                        (SERVER, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                                 b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")],
    "connect": [(CLIENT, b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01"),
                (SERVER, b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03")],
    "reset_midway": [(CLIENT, b"GET /r HTTP/1.1\r\n\r\n"),
                     (SERVER, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\npart"), RESET],
    "not_http": [(CLIENT, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
                 (SERVER, b"\x16\x03\x03\x00\x5a\x02")],
    "early_response_half_close": [(CLIENT, b"POST /big HTTP/1.1\r\nContent-Length: 1000\r\n\r\nab"),
                                  (SERVER, b"HTTP/1.1 413 Too Large\r\nConnection: close\r\n\r\n"),
                                  CLIENT_EOF, SERVER_EOF],
    "long_path_small_limits": [(CLIENT, b"GET /" + b"p" * 300 + b" HTTP/1.1\r\n\r\n" * 1),
                               (SERVER, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")],
}

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(here, exist_ok=True)
for name, steps in SEEDS.items():
    limits = 0x35 if name == "long_path_small_limits" else 0
    with open(os.path.join(here, name), "wb") as f:
        f.write(prog(steps, limits))
    with open(os.path.join(here, name + "_bytewise"), "wb") as f:
        f.write(prog(steps, 0, split=1))

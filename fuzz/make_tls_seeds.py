#!/usr/bin/env python3
"""Writes the TLS seed corpus (fuzz/corpus-tls/) in tls_fuzz's input format (see tls_fuzz.cc):
a flags byte, then ops: 0x10 client bytes / 0x13 server bytes + length byte + bytes; 0x17
close, 0x1F reset. The transcripts are the real captures of tests/unit/tls/captures.h; each seed
also exists split byte by byte."""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT, SERVER, CLOSE, RESET = 0x10, 0x13, 0x17, 0x1F


def captures():
    text = open(os.path.join(HERE, "..", "tests", "unit", "tls", "captures.h")).read()
    out = {}
    for name, body in re.findall(r"inline constexpr std::string_view k(\w+)Hex =\n((?:\s+\"[0-9a-f]*\"\n?)+);", text):
        out[name] = bytes.fromhex("".join(re.findall(r"\"([0-9a-f]*)\"", body)))
    return out


def records(stream):
    out, at = [], 0
    while at + 5 <= len(stream):
        n = int.from_bytes(stream[at + 3:at + 5], "big")
        out.append(stream[at:at + 5 + n])
        at += 5 + n
    return out


def encode(steps, flags=0, bytewise=False):
    out = bytearray([flags])
    for step in steps:
        if isinstance(step, int):
            out.append(step)
            continue
        op, data = step
        chunks = [data[i:i + 1] for i in range(len(data))] if bytewise else \
            [data[i:i + 254] for i in range(0, len(data), 254)]
        for c in chunks:
            out += bytes([op, len(c)]) + c
    return bytes(out)


def main():
    cap = captures()
    c13, s13 = records(cap["Tls13Client"]), records(cap["Tls13Server"])
    c12, s12 = records(cap["Tls12Client"]), records(cap["Tls12Server"])
    cn, sn = records(cap["Tls12NosniClient"]), records(cap["Tls12NosniServer"])
    j = b"".join
    seeds = {
        "tls13": [(CLIENT, c13[0]), (SERVER, j(s13[:6])), (CLIENT, j(c13[1:])), (SERVER, j(s13[6:])), CLOSE],
        "tls12": [(CLIENT, c12[0]), (SERVER, j(s12[:4])), (CLIENT, j(c12[1:4])), (SERVER, j(s12[4:7])),
                  (CLIENT, j(c12[4:])), (SERVER, j(s12[7:])), CLOSE],
        "tls12_nosni": [(CLIENT, cn[0]), (SERVER, j(sn[:4])), (CLIENT, j(cn[1:4])), (SERVER, j(sn[4:])), RESET],
        "tls12_alert": [(CLIENT, c12[0]), (SERVER, b"\x15\x03\x03\x00\x02\x02\x28"), CLOSE],
        "tls13_truncated": [(CLIENT, c13[0][:100]), RESET],
    }
    out_dir = os.path.join(HERE, "corpus-tls")
    os.makedirs(out_dir, exist_ok=True)
    for name, steps in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(encode(steps))
        with open(os.path.join(out_dir, name + "_bytewise"), "wb") as f:
            f.write(encode(steps, bytewise=True))
    # The hello parser directly (flags bit 0): the ClientHello and ServerHello bodies.
    with open(os.path.join(out_dir, "client_hello_body"), "wb") as f:
        f.write(bytes([1]) + c13[0][9:])
    with open(os.path.join(out_dir, "server_hello_body"), "wb") as f:
        f.write(bytes([1]) + s13[0][9:])


if __name__ == "__main__":
    main()

"""An HTTP/2 server that accepts `Upgrade: h2c` (RFC 7540 3.2) and prior knowledge, on
Debian's python3-h2. Serves GET: /missing is 404, anything else 200 with a fixed body.
Prints its port, serves until stdin closes. nghttpd and nginx do not take h2c upgrades.
"""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events

BODY = b"upgraded"


def respond(conn, stream_id, path):
    status = b"404" if path == b"/missing" else b"200"
    conn.send_headers(stream_id, [(b":status", status), (b"content-length", str(len(BODY)).encode())])
    conn.send_data(stream_id, BODY, end_stream=True)


def handle(sock):
    config = h2.config.H2Configuration(client_side=False)
    conn = h2.connection.H2Connection(config=config)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    if head.startswith(b"PRI * HTTP/2.0"):
        conn.initiate_connection()
        rest = data
        upgraded_path = None
    else:
        lines = head.split(b"\r\n")
        upgraded_path = lines[0].split(b" ")[1]
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(b":", 1) for line in lines[1:] if b":" in line)}
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        conn.initiate_upgrade_connection(headers.get(b"http2-settings", b""))
    sock.sendall(conn.data_to_send())
    if upgraded_path is not None:
        respond(conn, 1, upgraded_path)
        sock.sendall(conn.data_to_send())
    paths = {}
    while True:
        if rest:
            for event in conn.receive_data(rest):
                if isinstance(event, h2.events.RequestReceived):
                    paths[event.stream_id] = dict(event.headers).get(b":path")
                if isinstance(event, h2.events.StreamEnded):
                    respond(conn, event.stream_id, paths.pop(event.stream_id, b"/"))
            sock.sendall(conn.data_to_send())
        rest = sock.recv(65536)
        if not rest:
            return


def serve():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)

    def accept_loop():
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=lambda: (handle(sock), sock.close()), daemon=True).start()
    threading.Thread(target=accept_loop, daemon=True).start()
    sys.stdin.read()


if __name__ == "__main__":
    serve()

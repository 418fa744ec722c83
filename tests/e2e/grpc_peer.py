"""A gRPC server or client for the HTTP/2 end-to-end tests, on Debian's python3-grpcio.

The calls: unary (SayHello), server streaming (Count), a failing status sent as a trailers-only
response (Fail: the server aborts before any message), a deadline the server cannot meet (Slow),
a server stream the client cancels after two messages (Ticks: RST_STREAM mid-call), and many
unary calls at once on one connection (Burst: concurrent streams).

No protoc: generic handlers with bytes in and out. Run with /usr/bin/python3 (where Debian
installs grpcio).
  grpc_peer.py serve         prints the port, serves until stdin closes
  grpc_peer.py call PORT     makes the calls the test expects, prints what each returned
"""
import sys
import time

import grpc

SERVICE = "demo.v1.Greeter"
BURST = 200  # concurrent unary calls on one channel


def serve():
    def say_hello(request, context):
        return b"hello " + request

    def fail(request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, "no such greeting")

    def slow(request, context):
        time.sleep(1.5)
        return b"late"

    def count(request, context):
        for i in range(3):
            yield b"%d" % i

    def ticks(request, context):
        for i in range(1000):
            if not context.is_active():
                return
            yield b"%d" % i
            time.sleep(0.05)

    def burst(request, context):
        time.sleep(0.01)
        return request

    handlers = {
        "SayHello": grpc.unary_unary_rpc_method_handler(say_hello),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Ticks": grpc.unary_stream_rpc_method_handler(ticks),
        "Burst": grpc.unary_unary_rpc_method_handler(burst),
    }
    from concurrent import futures
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


def call(port):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        unary = lambda name: channel.unary_unary(f"/{SERVICE}/{name}")
        for _ in range(3):
            print("SayHello", unary("SayHello")(b"you", timeout=10).decode())
        print("Count", [m.decode() for m in channel.unary_stream(f"/{SERVICE}/Count")(b"", timeout=10)])
        for _ in range(2):
            try:
                unary("Fail")(b"x", timeout=10)
            except grpc.RpcError as e:
                print("Fail", e.code().name)
        try:
            unary("Slow")(b"x", timeout=0.3)
        except grpc.RpcError as e:
            print("Slow", e.code().name)
        ticks = channel.unary_stream(f"/{SERVICE}/Ticks")(b"", timeout=30)
        got = [next(ticks).decode(), next(ticks).decode()]
        ticks.cancel()  # RST_STREAM(CANCEL) while the server still streams
        print("Ticks", got, ticks.code().name)
        burst = unary("Burst")
        calls = [burst.future(b"%d" % i, timeout=30) for i in range(BURST)]
        print("Burst", sum(c.result() == b"%d" % i for i, c in enumerate(calls)))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        call(int(sys.argv[2]))

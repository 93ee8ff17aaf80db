"""Baseline: Tornado's `TCPServer` and `IOStream` with `httptools` parsing, answering "OK".

No `HTTP1Connection`: each connection is one coroutine that reads what has arrived
(`read_bytes(65536, partial=True)`), feeds it to an `httptools.HttpRequestParser`, and writes the
answers to every request completed in it with one `stream.write`, in order (pipelining). Bodies are
read and dropped; HEAD gets no body; keep-alive as HTTP/1.1 says, `Connection: close` honoured. The
answer is the bytes of a ping answer (`baseline_process.answer`).

    python -m bench.baseline_iostream --port 8003
"""

from __future__ import annotations

import httptools
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from bench.baseline_process import ANSWER_GET, ANSWER_HEAD, answer, bad_request, run


class _Requests:
    """httptools callbacks: collects the answers to the requests completed in what was fed."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.out: list[bytes] = []
        self.close = False

    def on_message_complete(self) -> None:
        if self.close:
            return  # after a request that closes the connection: ignored
        head = self.parser.get_method() == b"HEAD"
        if self.parser.should_keep_alive():
            self.out.append(ANSWER_HEAD if head else ANSWER_GET)
        else:
            self.out.append(answer(head=head, close=True))
            self.close = True


class OkServer(TCPServer):
    async def handle_stream(self, stream: IOStream, address: tuple[str, int]) -> None:
        requests = _Requests()
        try:
            while not requests.close:
                data = await stream.read_bytes(65536, partial=True)
                try:
                    requests.parser.feed_data(data)
                except httptools.HttpParserError:
                    # llhttp also refuses bytes after a request that closes the connection.
                    if not requests.close:
                        requests.out.append(bad_request())
                        requests.close = True
                if requests.out:
                    written = stream.write(b"".join(requests.out))
                    requests.out.clear()
                    if requests.close:
                        await written
            stream.close()
        except StreamClosedError:
            pass


def start(host: str, port: int) -> TCPServer:
    server = OkServer()
    server.listen(port, address=host, backlog=4096)
    return server


def main(argv: list[str] | None = None) -> None:
    run(start, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    main()

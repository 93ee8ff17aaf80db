"""Baseline: an `asyncio.Protocol` with `httptools` parsing on the event loop Tornado runs on,
answering "OK".

The lean ping path's shape, with nothing behind it: `data_received` feeds an
`httptools.HttpRequestParser`, and each completed request is answered at once with
`transport.write`, so pipelined requests are answered in order. Bodies are read and dropped; HEAD
gets no body; keep-alive as HTTP/1.1 says, `Connection: close` honoured (the transport is closed
after the answer, and anything after that request is ignored). The answer is the bytes of a ping
answer (`baseline_process.answer`).

    python -m bench.baseline_protocol --port 8004
"""

from __future__ import annotations

import asyncio

import httptools

from bench.baseline_process import ANSWER_GET, ANSWER_HEAD, answer, bad_request, run


class OkProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._close_after(bad_request())

    def on_message_complete(self) -> None:
        if self.closing:
            return
        head = self.parser.get_method() == b"HEAD"
        if self.parser.should_keep_alive():
            if self.transport is not None:
                self.transport.write(ANSWER_HEAD if head else ANSWER_GET)
        else:
            self._close_after(answer(head=head, close=True))

    def _close_after(self, last: bytes) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.write(last)
            self.transport.close()  # after the buffered answer is sent


async def start(host: str, port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(OkProtocol, host, port, backlog=4096)


def main(argv: list[str] | None = None) -> None:
    run(start, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    main()

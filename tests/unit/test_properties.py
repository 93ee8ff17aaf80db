"""Hypothesis: slugify matches Django's; no path or query makes the ping route answer 5xx."""

from __future__ import annotations

import socket

from django.utils.text import slugify as django_slugify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hcserver.domain.slugs import slugify
from hcserver.web.ping import parse_ping_path, parse_query


@given(st.text())
def test_slugify_matches_django(text):
    assert slugify(text) == django_slugify(text)


_PATH_ALPHABET = st.sampled_from(
    list("abcdef0123456789-/_?&=%.ABC") + ["start", "fail", "log", "ping", "rid", "create=1", "%ff", "%2F", "\u00e9"]
)


@given(st.lists(_PATH_ALPHABET, max_size=40).map("".join))
def test_parse_functions_only_raise_domain_errors(tail):
    from hcserver.domain.errors import DomainError

    path, _, query = ("/" + tail).partition("?")
    try:
        parse_ping_path(path)
        parse_query(query)
    except DomainError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tail=st.one_of(st.lists(_PATH_ALPHABET, max_size=30).map("".join), st.binary(max_size=60)))
def test_no_path_or_query_answers_5xx(live, tail):
    if isinstance(tail, str):
        tail = tail.encode("utf-8")
    # Keep it one request line: drop bytes that would end or split the line.
    target = b"/" + bytes(b for b in tail if b not in b"\r\n \x00")
    with socket.create_connection(("127.0.0.1", live.server.port), timeout=5) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    if answer:  # tornado may drop a request line it cannot parse; that's not a 5xx
        status = int(answer.split(b" ", 2)[1])
        assert status < 500, (target, answer[:200])

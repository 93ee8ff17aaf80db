from __future__ import annotations

import asyncio
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

from hcserver.alerts.channels import Channel
from hcserver.alerts.results import DeliveryResult
from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.transports import alert_text, build_email, deliver
from tests.alerts.helpers import SMTPServer, free_port, make_ctx, run, silent_tcp_server


def email_channel(address: str = "oncall@example.org") -> Channel:
    return Channel.create("p", {"kind": "email", "email": address}, now=0.0)


def parse(raw: bytes | str) -> EmailMessage:
    data = raw.encode() if isinstance(raw, str) else raw
    msg = message_from_bytes(data, policy=default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_down_alert_arrives(smtp_server: SMTPServer) -> None:
    result = run(deliver(email_channel(), make_ctx(), smtp_server.settings()))
    assert result == DeliveryResult(ok=True)
    (envelope,) = smtp_server.recorder.messages
    assert envelope.mail_from == "alerts@hc.example.org"
    assert envelope.rcpt_tos == ["oncall@example.org"]
    assert envelope.content is not None
    msg = parse(envelope.content)
    assert msg["Subject"] == "DOWN | Nightly backup"
    assert msg["To"] == "oncall@example.org"
    assert msg["Auto-Submitted"] == "auto-generated"
    # SMTP carries CRLF line ends; compare the text as written.
    body = msg.get_content().replace("\r\n", "\n")
    assert 'The check "Nightly backup" is DOWN.' in body
    assert "Status:      down" in body
    assert "Changed at:  2024-01-02T03:04:05+00:00" in body
    assert "Last ping:   2024-01-02T03:03:05+00:00" in body
    assert "Exit status: 1" in body
    assert "Project:     Ops" in body
    assert body.endswith("Last ping body:\n\nbackup failed: disk full\n")


def test_up_alert_of_an_unnamed_check(smtp_server: SMTPServer) -> None:
    ctx = make_ctx(status="up", name="", last_ping=None, body=None, exitstatus=None)
    assert run(deliver(email_channel(), ctx, smtp_server.settings())).ok
    msg = parse(smtp_server.recorder.messages[0].content or b"")
    assert msg["Subject"] == "UP | 5d0b7e2c-5f27-4a5e-9b9e-8a4b1f2c3d4e"
    body = msg.get_content()
    assert "Last ping:   never" in body
    assert "Last ping body" not in body and "Exit status" not in body


def test_long_and_binary_ping_bodies_are_truncated_and_decoded() -> None:
    ctx = make_ctx(body=b"\xff" + b"a" * 10_000)
    text = alert_text(ctx)
    assert "\ufffd" + "a" * 3999 + "\n[truncated]\n" in text
    assert len(text) < 5000


def test_subject_stays_on_one_line() -> None:
    msg = build_email(make_ctx(name="evil\nBcc: x@example.org"), "a@example.org", AlertSettings())
    assert msg["Subject"] == "DOWN | evil Bcc: x@example.org"
    assert msg["Bcc"] is None


def test_login_when_a_user_is_set(smtp_server: SMTPServer) -> None:
    settings = smtp_server.settings(email_host_user="mailer", email_host_password="s3cret")
    assert run(deliver(email_channel(), make_ctx(), settings)).ok
    assert smtp_server.logins == [(b"mailer", b"s3cret")]
    wrong = smtp_server.settings(email_host_user="mailer", email_host_password="nope")
    result = run(deliver(email_channel(), make_ctx(), wrong))
    assert not result.ok and not result.permanent
    assert result.error.startswith("SMTP error 535")


def test_rejected_address_is_permanent_and_busy_is_not(smtp_server: SMTPServer) -> None:
    refused = run(deliver(email_channel("nobody@example.org"), make_ctx(), smtp_server.settings()))
    assert refused == DeliveryResult(ok=False, permanent=True, error="SMTP error 550: 5.1.1 No such user")
    busy = run(deliver(email_channel("busy@example.org"), make_ctx(), smtp_server.settings()))
    assert busy == DeliveryResult(ok=False, permanent=False, error="SMTP error 451: 4.3.0 Try again later")
    assert smtp_server.recorder.messages == []


def test_no_smtp_server() -> None:
    settings = AlertSettings(email_host="127.0.0.1", email_port=free_port(), timeout=1.0)
    assert run(deliver(email_channel(), make_ctx(), settings)) == DeliveryResult(
        ok=False, permanent=False, error="Connection failed"
    )


def test_silent_smtp_server_times_out() -> None:
    async def scenario() -> DeliveryResult:
        release = asyncio.Event()
        server, port = await silent_tcp_server(release)
        try:
            settings = AlertSettings(email_host="127.0.0.1", email_port=port, timeout=0.3)
            started = time.monotonic()
            result = await deliver(email_channel(), make_ctx(), settings)
            assert time.monotonic() - started < 1.0
            return result
        finally:
            release.set()
            server.close()
            await server.wait_closed()

    assert run(scenario()) == DeliveryResult(ok=False, permanent=False, error="Connection timed out")

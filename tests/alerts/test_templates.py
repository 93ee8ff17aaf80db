from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.templates import placeholders, render_body, render_header, render_url, substitute
from hcserver.alerts.transports import alert_text, build_email
from tests.alerts.helpers import make_ctx

CODE = "5d0b7e2c-5f27-4a5e-9b9e-8a4b1f2c3d4e"


def test_every_placeholder_in_a_body() -> None:
    ctx = make_ctx(name='My "job"', tags="prod db")
    out = render_body("$CODE|$STATUS|$NOW|$NAME|$NAME_JSON|$SLUG|$TAGS|$TAG1|$TAG2|$EXITSTATUS|$BODY|$BODY_JSON", ctx)
    assert out.split("|") == [
        CODE,
        "down",
        "2024-01-02T03:04:05+00:00",
        'My "job"',
        '"My \\"job\\""',
        "nightly-backup",
        "prod db",
        "prod",
        "db",
        "1",
        "backup failed: disk full\n",
        '"backup failed: disk full\\n"',
    ]


def test_json_is_the_check_json() -> None:
    ctx = make_ctx()
    assert json.loads(render_body("$JSON", ctx)) == ctx.check_json


def test_now_drops_fractions_of_a_second() -> None:
    assert render_body("$NOW", make_ctx(now=1704164645.987)) == "2024-01-02T03:04:05+00:00"


def test_exitstatus_is_minus_one_without_one() -> None:
    assert render_body("$EXITSTATUS", make_ctx(exitstatus=None)) == "-1"
    assert render_body("$EXITSTATUS", make_ctx(exitstatus=0)) == "0"


def test_values_are_url_encoded_in_urls_only() -> None:
    ctx = make_ctx(name="a/b & c?d#e", tags="x+y")
    url = render_url("https://example.org/$NAME?tag=$TAG1&all=$TAGS&s=$STATUS", ctx)
    assert url == "https://example.org/a%2Fb%20%26%20c%3Fd%23e?tag=x%2By&all=x%2By&s=down"
    assert render_body("$NAME", ctx) == "a/b & c?d#e"
    assert render_header("$NAME", ctx) == "a/b & c?d#e"


def test_name_json_is_url_encoded_too_in_urls() -> None:
    assert render_url("http://h/?n=$NAME_JSON", make_ctx(name="a b")) == "http://h/?n=%22a%20b%22"


def test_body_placeholders_only_fill_request_bodies() -> None:
    ctx = make_ctx(body=b"hello")
    assert render_url("http://h/$BODY", ctx) == "http://h/$BODY"
    assert render_header("$BODY_JSON", ctx) == "$BODY_JSON"
    assert render_body("$BODY", ctx) == "hello"


def test_body_that_is_not_utf8_is_decoded_with_replacement() -> None:
    ctx = make_ctx(body=b"caf\xe9 \xff ok")
    assert render_body("$BODY", ctx) == "caf\ufffd \ufffd ok"
    assert json.loads(render_body("$BODY_JSON", ctx)) == "caf\ufffd \ufffd ok"


def test_missing_body_is_empty() -> None:
    ctx = make_ctx(body=None)
    assert render_body("[$BODY][$BODY_JSON]", ctx) == '[][""]'


def test_tags_one_by_one_and_the_tenth_beats_the_first() -> None:
    tags = " ".join(f"t{i}" for i in range(1, 12))
    ctx = make_ctx(tags=tags)
    assert render_body("$TAG1,$TAG2,$TAG10,$TAG11", ctx) == "t1,t2,t10,t11"
    assert render_body("$TAG12", ctx) == "t12"  # $TAG1 followed by "2": there is no twelfth tag


def test_tag_beyond_the_last_reads_as_a_shorter_one_like_the_reference() -> None:
    ctx = make_ctx(tags="one two")
    assert render_body("$TAG3|$TAG10", ctx) == "$TAG3|one0"


def test_name_json_beats_name() -> None:
    assert render_body("$NAME_JSON/$NAME", make_ctx(name="n")) == '"n"/n'


def test_no_recursive_expansion() -> None:
    ctx = make_ctx(name="$CODE and $TAG1", tags="$NAME")
    assert render_body("$NAME|$TAG1|$TAGS", ctx) == "$CODE and $TAG1|$NAME|$NAME"


def test_double_dollar_and_unknown_placeholders_stay() -> None:
    ctx = make_ctx(name="n")
    assert render_body("$$NAME costs $5 $FOO $name", ctx) == "$n costs $5 $FOO $name"


def test_headers_lose_line_breaks_and_non_latin1() -> None:
    ctx = make_ctx(name="evil\r\nX-Injected: 1 ✓ é")
    assert render_header("Bearer $NAME", ctx) == "Bearer evil  X-Injected: 1 &#10003; é"


def test_placeholders_lists_tags() -> None:
    values = placeholders(make_ctx(tags="a b c"))
    assert [values[f"$TAG{i}"] for i in (1, 2, 3)] == ["a", "b", "c"]
    assert "$TAG4" not in values
    assert "$BODY" not in values


# -- properties -------------------------------------------------------------------------------------

PLACEHOLDER_NAMES = ["$CODE", "$STATUS", "$NAME", "$NAME_JSON", "$SLUG", "$TAGS", "$TAG1", "$BODY"]
tricky_text = st.text(alphabet=st.sampled_from(list("$NAMETGS_JOBDY1 \u00e9\u2713\n")) | st.characters(), max_size=40)


# Any code point, lone surrogates included: JSON bodies can carry those ("\ud800").
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=50)


@given(template=any_text, name=any_text, tags=any_text, body=st.binary(max_size=50))
def test_rendering_never_raises(template: str, name: str, tags: str, body: bytes) -> None:
    ctx = make_ctx(name=name, tags=tags, body=body)
    for render in (render_url, render_body, render_header):
        out = render(template, ctx)
        assert isinstance(out, str)
        if render is not render_body:
            out.encode("utf-8")
    # Email and Apprise text must survive encoding too.
    build_email(ctx, "a@example.org", AlertSettings()).as_bytes()
    alert_text(ctx).encode("utf-8")


# Lone surrogates (category Cs) are the one exception: they cannot be sent, see the next test.
@given(template=st.text(alphabet=st.characters(blacklist_characters="$", blacklist_categories=("Cs",)), max_size=100))
def test_text_without_dollar_is_unchanged(template: str) -> None:
    assert render_body(template, make_ctx()) == template


def test_a_lone_surrogate_in_a_template_becomes_a_question_mark() -> None:
    assert render_body("a\ud800b", make_ctx()) == "a?b"
    assert render_url("x\udfffy", make_ctx()) == "x?y"


@given(
    pieces=st.lists(
        st.one_of(
            st.sampled_from(PLACEHOLDER_NAMES),
            # Literal text that cannot extend a placeholder name or start one.
            st.text(alphabet=st.sampled_from(list(" -/,.xyz\u00e9")), min_size=1, max_size=5),
        ),
        max_size=12,
    ),
    name=tricky_text,
    tag=st.text(alphabet=st.sampled_from(list("$NAMETG1_")), min_size=1, max_size=10),
    body=st.binary(max_size=20),
)
def test_one_pass_substitution_matches_a_model(pieces: list[str], name: str, tag: str, body: bytes) -> None:
    # A value that contains placeholders must come out verbatim, never expanded again.
    ctx = make_ctx(name=name, tags=tag, body=body)
    values = placeholders(ctx, with_body=True)
    expected = "".join(values.get(p, p) for p in pieces)
    # Literal pieces never contain A-Z, digits or "_", so no two pieces join into a longer name.
    joined = "".join(pieces)
    assert render_body(joined, ctx) == expected


@given(values=st.dictionaries(st.from_regex(r"\$[A-Z]{1,6}", fullmatch=True), st.text(max_size=10), max_size=6))
def test_substitute_keeps_values_verbatim(values: dict[str, str]) -> None:
    template = " ".join(values)
    out = substitute(template, values)
    # Each placeholder is followed by a space or the end, so longest-first gives each its own value
    # even when one name is a prefix of another ("$A" and "$AB").
    assert out == " ".join(values.values())

"""Properties of the redactor (camaudit.redact): any text redacts without an exception in bounded
time, a secret-named field's value never survives in any shape a device uses, and an extra
secret (the password camaudit used) never survives anywhere."""

from __future__ import annotations

from fuzzkit import bounded, fuzz_text
from hypothesis import assume, given
from hypothesis import strategies as st

from camaudit.redact import SECRET_SUFFIXES, redact, redact_obj

SEEDS = [b"<EZVIZ><verificationCode>QWERTY</verificationCode></EZVIZ>", b"table.T2UServer.Key=abc\r\n",
         b'{"Password": "x", "a": [1, 2]}', b"rtsp://admin:pw@10.0.0.5/?password=x&user=y",
         b'<user name="x" password="attr"/>']
TOKENS = (b"<password", b"<a:key ", b"</password>", b"password=", b"&password=", b'"key":', b"://", b"@" * 50,
          b"<![CDATA[", b"=" * 50, b"\\" * 50)
# Lower-case letters and digits: such a secret cannot be spelt by "[REDACTED]" or the markup around it.
SECRET = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=3, max_size=24)
NAME = st.builds(lambda prefix, suffix, upper: (prefix + suffix).upper() if upper else prefix + suffix,
                 st.sampled_from(["", "ddns", "t2u.", "Ftp_", "admin"]), st.sampled_from(SECRET_SUFFIXES), st.booleans())


@given(fuzz_text(SEEDS, tokens=TOKENS), st.lists(st.text(min_size=3, max_size=12), max_size=3))
def test_redact_never_raises(text: str, extra: list[str]) -> None:
    out = bounded(redact, text, extra)
    assert isinstance(out, str)
    bounded(redact_obj, {"a": [text, {"password": text}]}, extra)


@given(fuzz_text(SEEDS), st.lists(SECRET, min_size=1, max_size=3))
def test_extra_secrets_never_survive(text: str, secrets: list[str]) -> None:
    wrapped = text + secrets[0] + text[: len(text) // 2] + secrets[-1]
    out = redact(wrapped, secrets)
    assert not any(secret in out for secret in secrets)


SHAPES = (
    "<{n}>{v}</{n}>",
    "<ns:{n} a=\"1\">{v}</ns:{n}>",
    "<{n}>\n  {v}\n</{n}>",
    "<x {n}=\"{v}\"/>",
    "<x {n}='{v}'/>",
    "table.Obj.{n}={v}",
    "table.Obj[0].{n} = {v}",
    "{{\"{n}\": \"{v}\"}}",
    "{{\"{n}\":\"{v}\", \"b\": 1}}",
    "http://10.0.0.5/a?{n}={v}&b=1",
    "rtsp://user:{v}@10.0.0.5/",
    "<{n}>{v}",  # cut at the size limit
)


@given(st.sampled_from(SHAPES), NAME, SECRET, st.sampled_from(["", "<r>", "a\n", "x=1\n", " "]))
def test_secret_named_fields_never_survive(shape: str, name: str, secret: str, lead: str) -> None:
    if shape.startswith("table") and lead.startswith("<"):
        # Dahua CGI replies are line-based: a key=value row starts a line (after indentation at
        # most), never in the middle of markup.
        lead += "\n"
    # The secret must be the value alone: "sec" inside the name "ddnssecret" is the name, kept.
    assume(secret not in lead + shape.format(n=name, v=""))
    text = lead + shape.format(n=name, v=secret)
    assert secret not in redact(text), text

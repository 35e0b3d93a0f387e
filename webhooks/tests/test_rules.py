"""Pure rules: signature (checked against the standardwebhooks reference library), retry
schedule, target URL form, forbidden addresses, body."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks import rules

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_verifies_with_the_standard_webhooks_library() -> None:
    body = rules.delivery_body(
        event_type="contract.paused", timestamp="2026-03-04T10:00:00.000Z", data={"contractId": "x"}
    )
    timestamp = 1_900_000_000
    signature = rules.signature(secret=SECRET, message_id="msg_1", timestamp=timestamp, body=body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(timestamp)}
    verifier = Webhook(SECRET)
    # The library refuses timestamps far from now: verify at the signing instant.
    import time_machine

    with time_machine.travel(timestamp, tick=False):
        payload = verifier.verify(body, {**headers, "webhook-signature": signature})
        assert payload == json.loads(body)
        with pytest.raises(WebhookVerificationError):
            verifier.verify(body + " ", {**headers, "webhook-signature": signature})
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "A" * 32).verify(body, {**headers, "webhook-signature": signature})


def test_signature_matches_the_specification_example() -> None:
    # The example of the Standard Webhooks specification (signatures section).
    signature = rules.signature(
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body='{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_body_is_compact_json_with_type_timestamp_data() -> None:
    body = rules.delivery_body(event_type="t", timestamp="ts", data={"a": "é"})
    assert body == '{"type":"t","timestamp":"ts","data":{"a":"é"}}'


def test_retry_schedule_spans_about_a_day_then_gives_up() -> None:
    delays = [rules.retry_delay(attempts=n) for n in range(1, rules.MAX_ATTEMPTS)]
    assert delays[0] == timedelta(seconds=5)
    assert all(d is not None for d in delays)
    total = sum((d for d in delays if d is not None), timedelta())
    assert timedelta(hours=20) < total < timedelta(hours=25)
    assert rules.retry_delay(attempts=rules.MAX_ATTEMPTS) is None
    assert rules.MAX_ATTEMPTS == 10
    with pytest.raises(ValueError):
        rules.retry_delay(attempts=0)


def test_spread_adds_at_most_ten_percent() -> None:
    base = rules.retry_delay(attempts=3, spread=0.0)
    spread = rules.retry_delay(attempts=3, spread=0.999)
    assert base is not None and spread is not None
    assert base <= spread <= base * 1.1
    assert 0 <= rules.spread_of("abc") < 1
    assert rules.spread_of("abc") == rules.spread_of("abc")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address under test, not a bind
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "fd00:ec2::254",
        "not-an-ip",
    ],
)
def test_forbidden_addresses(address: str) -> None:
    assert rules.is_forbidden_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not rules.is_forbidden_address(address)


@pytest.mark.parametrize(
    ("url", "allow_http", "message"),
    [
        ("http://example.com/hook", False, "url must use https"),
        ("ftp://example.com/hook", True, "url must use https or http"),
        ("https:///nohost", False, "url must name a host"),
        ("https://user:pw@example.com/", False, "url must not contain credentials"),
        ("https://exa mple.com/", False, "url must not contain whitespace or control characters"),
        ("https://example.com/\x00", False, "url must not contain whitespace or control"),
        ("https://example.com:99999/", False, "url must be a valid URL"),
        ("https://[::1/", False, "url must be a valid URL"),
        ("https://" + "a" * 2001, False, "url must be shorter than or equal to 2000"),
        ("not a url", False, "url must not contain whitespace"),
        ("example.com", False, "url must use https"),
    ],
)
def test_refused_url_forms(url: str, allow_http: bool, message: str) -> None:
    with pytest.raises(rules.UrlRefused, match=message.replace("[", r"\[")):
        rules.parse_target_url(url, allow_http=allow_http)


def test_accepted_url_forms() -> None:
    assert rules.parse_target_url("https://example.com/a?b=1", allow_http=False).hostname == (
        "example.com"
    )
    parts = rules.parse_target_url("http://127.0.0.1:8080/x", allow_http=True)
    assert rules.default_port(parts) == 8080


def test_response_excerpt_is_bounded_and_storable() -> None:
    raw = b"\x00<script>" + b"x" * 10_000 + b"\xff"
    text = rules.response_excerpt(raw)
    assert "\x00" not in text
    assert len(text) <= rules.RESPONSE_BODY_LIMIT
    assert rules.response_excerpt(b"\xff\xfe").startswith("\ufffd")


def test_event_type_checks() -> None:
    assert rules.unknown_event_types(["contract.paused", "nope"]) == ["nope"]
    assert rules.subscribes([], "contract.paused")
    assert rules.subscribes(["contract.paused"], "contract.paused")
    assert not rules.subscribes(["contract.created"], "contract.paused")


def test_the_readme_verification_example_accepts_our_signature() -> None:
    """README "Webhooks" shows a standard-library verifier: it must accept what we send."""
    import re
    import time
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    code = next(
        block
        for block in re.findall(r"```python\n(.*?)```", section, re.S)
        if "def verified" in block
    )
    namespace: dict[str, object] = {}
    exec(code, namespace)  # noqa: S102 - our own documentation
    verified = namespace["verified"]
    assert callable(verified)
    body = rules.delivery_body(event_type="contract.paused", timestamp="t", data={})
    stamp = int(time.time())
    headers = {
        "webhook-id": "d1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": rules.signature(
            secret=SECRET, message_id="d1", timestamp=stamp, body=body
        ),
    }
    assert verified(SECRET, headers, body.encode())
    assert not verified(SECRET, headers, body.encode() + b" ")

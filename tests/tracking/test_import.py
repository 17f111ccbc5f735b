"""CSV bulk import: good rows stored, bad rows reported by line, re-import harmless, hooks told per chunk."""
from __future__ import annotations

import io
import uuid
from datetime import datetime, timezone

import pytest
from django.core.management import CommandError, call_command

from tracking import hooks, imports
from tracking.models import Event

pytestmark = pytest.mark.django_db

CSV = """user_id,item_id,event,timestamp,value
1,50,rated,881250949,5
1,172,rated,881250000,4
2,50,item_viewed,2026-11-01T10:00:00Z,
2,,searched_genre,2026-11-01T10:05:00Z,
3,50,rated,not-a-time,4
4,50,Rated Badly,881250949,4
5,,purchased,881250949,
6,<x>,rated,881250949,3
7,50,rated,881250949,five
8,50,rated
9,50,rated,99999999999999,2
1,50,rated,881250949,5
"""


@pytest.fixture
def published(monkeypatch):
    calls: list[list[int]] = []
    monkeypatch.setitem(hooks._hooks, hooks.EVENTS_APPENDED, [(lambda ids: calls.append(list(ids)), 0)])
    return calls


def run(text: str, **kw) -> imports.ImportReport:
    return imports.import_csv(io.StringIO(text), **kw)


def test_good_rows_are_stored_and_bad_rows_reported_by_line(django_capture_on_commit_callbacks, published):
    with django_capture_on_commit_callbacks(execute=True):
        report = run(CSV, visitor_prefix="ml-")
    assert report.rows == 12 and report.complete
    assert (report.accepted, report.duplicate) == (4, 1)  # line 13 repeats line 2
    reasons = dict(report.rejected)
    assert sorted(reasons) == [6, 7, 8, 9, 10, 11, 12]
    assert "neither unix seconds nor ISO 8601" in reasons[6]
    assert "unknown event name 'Rated Badly'" in reasons[7]
    assert reasons[8] == "purchased needs an item_id"
    assert "item_id must be" in reasons[9]
    assert "value 'five' is not a number" in reasons[10]
    assert "expected 5 columns" in reasons[11]
    assert reasons[12] == "timestamp is in the future"
    rated = Event.objects.get(visitor_id="ml-1", item_id="50")
    assert rated.name == "rated" and rated.properties == {"value": 5}
    assert rated.occurred_at == rated.client_time == datetime.fromtimestamp(881250949, tz=timezone.utc)
    assert rated.source == "import" and rated.user_id == "ml-1" and not rated.is_bot
    assert Event.objects.get(visitor_id="ml-2", name="searched_genre").item_id == ""
    assert sorted(i for call in published for i in call) == sorted(Event.objects.values_list("id", flat=True))


def test_rows_are_appended_in_time_order_with_sessions():
    run(CSV)
    names = list(Event.objects.order_by("id").values_list("visitor_id", "item_id"))
    assert names == [("1", "172"), ("1", "50"), ("2", "50"), ("2", "")]
    first, second = Event.objects.filter(visitor_id="1").order_by("id")
    assert first.session_id == second.session_id  # 949 s apart: one 30-minute session
    assert Event.objects.filter(visitor_id="2").values("session_id").distinct().count() == 1
    assert first.session_id != Event.objects.filter(visitor_id="2").first().session_id


def test_reimporting_is_harmless(django_capture_on_commit_callbacks, published):
    run(CSV)
    before = set(Event.objects.values_list("uuid", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        again = run(CSV)
    assert (again.accepted, again.duplicate, len(again.rejected)) == (0, 5, 7)
    assert set(Event.objects.values_list("uuid", flat=True)) == before
    assert published == []  # nothing new, nothing to fold


def test_chunks_commit_separately_and_publish_once_each(django_capture_on_commit_callbacks, published):
    rows = "".join(f"{u},{i},rated,{881250000 + u * 100 + i},3\n" for u in range(1, 6) for i in range(1, 11))
    with django_capture_on_commit_callbacks(execute=True):
        report = run(rows, chunk_size=20)
    assert report.accepted == 50 and report.rejected == []
    assert [len(c) for c in published] == [20, 20, 10]


def test_uuids_are_deterministic_per_row_content():
    row = imports.ImportRow(2, "1", "50", "rated", "881250949", "5")
    now = datetime.now(timezone.utc)
    a = imports.clean_row(row, visitor_prefix="ml-", now=now)
    assert a.uuid == imports.clean_row(row, visitor_prefix="ml-", now=now).uuid
    assert a.uuid != imports.clean_row(row, visitor_prefix="other-", now=now).uuid
    changed = imports.ImportRow(2, "1", "50", "rated", "881250949", "4")
    assert a.uuid != imports.clean_row(changed, visitor_prefix="ml-", now=now).uuid
    assert isinstance(a.uuid, uuid.UUID) and a.uuid.version == 5


@pytest.mark.parametrize("value, expected", [
    ("881250949", datetime(1997, 12, 4, 15, 55, 49, tzinfo=timezone.utc)),
    ("881250949000", datetime(1997, 12, 4, 15, 55, 49, tzinfo=timezone.utc)),  # milliseconds
    ("881250949.5", datetime(1997, 12, 4, 15, 55, 49, 500000, tzinfo=timezone.utc)),
    ("1997-12-04T15:55:49", datetime(1997, 12, 4, 15, 55, 49, tzinfo=timezone.utc)),
    ("1997-12-04T16:55:49+01:00", datetime(1997, 12, 4, 15, 55, 49, tzinfo=timezone.utc)),
])
def test_timestamps(value, expected):
    assert imports.parse_timestamp(value) == expected


def test_a_headerless_file_uses_the_column_order():
    report = run("1,50,rated,881250949,5\n1,51,item_viewed,881250950\n")
    assert report.accepted == 2 and report.complete


def test_a_header_without_required_columns_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("user_id,item_id,when\n1,2,3\n")
    with pytest.raises(CommandError, match=r"header lacks \['event', 'timestamp'\]"):
        call_command("tracking_import", str(path), "--no-progress")


def test_the_command_prints_a_summary_and_writes_all_errors(tmp_path, capsys):
    path, errors = tmp_path / "events.csv", tmp_path / "errors.csv"
    path.write_text(CSV)
    out, err = io.StringIO(), io.StringIO()
    call_command("tracking_import", str(path), "--visitor-prefix", "ml-", "--errors", str(errors),
                 "--show-errors", "2", "--no-progress", stdout=out, stderr=err)
    assert "12 rows: 4 imported, 1 already in the log, 7 rejected" in out.getvalue()
    assert "line 6: timestamp 'not-a-time'" in err.getvalue() and "and 5 more" in err.getvalue()
    lines = errors.read_text().splitlines()
    assert lines[0] == "line,reason" and len(lines) == 8 and lines[1].startswith("6,")
    assert Event.objects.filter(visitor_id__startswith="ml-").count() == 4


def test_the_command_refuses_a_missing_file():
    with pytest.raises(CommandError, match="cannot read"):
        call_command("tracking_import", "/nonexistent/events.csv")


def test_demo_import_loads_movielens_ratings_once(django_capture_on_commit_callbacks, published):
    from demo.catalogue.management.commands.demo_import import Command

    cmd = Command(stdout=io.StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        cmd.import_ratings()
    history = Event.objects.filter(source="import", visitor_id__startswith="ml-")
    assert history.count() == 100_000
    assert history.values("visitor_id").distinct().count() == 943
    assert sum(len(c) for c in published) == 100_000 and len(published) == 20  # one hook call per chunk
    assert set(history.values_list("name", flat=True).distinct()) == {"rated"}
    assert history.filter(properties__value=5).count() == 21_201  # MovieLens-100K's count of 5-star ratings
    cmd.import_ratings()  # already imported: nothing to do
    assert history.count() == 100_000

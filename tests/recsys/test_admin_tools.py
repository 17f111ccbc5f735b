"""The admin tuning UI's pages: permissions, publish/rollback, preview, experiments, privacy, evaluation."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management.base import BaseCommand
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from recsys import abtest, engine
from recsys.models import AuditEntry, EvaluationRun, Experiment, InterestConfig, SlotConfig, VisitorProfile
from recsys.services.interests import pack_vectors
from tracking.models import Event

pytestmark = pytest.mark.django_db


def add_event(visitor, name, item_id="", minutes_ago=0.0, **props):
    now = timezone.now() - timedelta(minutes=minutes_ago)
    return Event.objects.create(uuid=uuid.uuid4(), name=name, visitor_id=visitor, item_id=str(item_id),
                                properties=props, occurred_at=now, received_at=now)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("boss", "boss@example.com", "pw")


@pytest.fixture
def boss(superuser):
    c = Client()
    c.force_login(superuser)
    return c


@pytest.fixture
def staff_factory(db):
    def make(*perms):
        user = User.objects.create_user(f"staff{uuid.uuid4().hex[:6]}", password="pw", is_staff=True)
        for perm in perms:
            app, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
        c = Client()
        c.force_login(user)
        return c
    return make


FORM = {"w:popular/trending": "1", "w:content/interests": "0", "exclude": "purchased forever\nitem_viewed 600",
        "limit": "5", "diversity": "1", "note": "trending only"}


# --- Permissions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,args", [("recsys_dashboard", []), ("recsys_tuning", []), ("recsys_tune_slot", ["for-you"]),
                                       ("recsys_visitors", []), ("recsys_experiments", []), ("recsys_evaluations", [])])
def test_pages_are_staff_only(boss, name, args, db):
    url = reverse(f"admin:{name}", args=args)
    assert boss.get(url).status_code == 200
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    visitor = User.objects.create_user("shopper", password="pw")  # logged in, not staff
    c = Client()
    c.force_login(visitor)
    assert c.get(url).status_code == 302


def test_staff_without_the_view_permission_gets_403(staff_factory):
    c = staff_factory()
    assert c.get(reverse("admin:recsys_dashboard")).status_code == 403
    assert c.get(reverse("admin:recsys_tuning")).status_code == 403
    c2 = staff_factory("recsys.view_dashboard")
    assert c2.get(reverse("admin:recsys_dashboard")).status_code == 200


def test_publish_needs_its_permission(staff_factory):
    viewer = staff_factory("recsys.view_slotconfig")
    page = viewer.get(reverse("admin:recsys_tune_slot", args=["for-you"]))
    assert page.status_code == 200 and b"Publish new version" not in page.content
    resp = viewer.post(reverse("admin:recsys_tune_slot", args=["for-you"]), FORM)
    assert b"recsys.publish_slotconfig" in resp.content
    assert not SlotConfig.objects.exists()
    publisher = staff_factory("recsys.view_slotconfig", "recsys.publish_slotconfig")
    assert publisher.post(reverse("admin:recsys_tune_slot", args=["for-you"]), FORM).status_code == 302
    assert SlotConfig.objects.filter(slot="for-you", version=1).exists()


def test_posts_need_a_csrf_token(superuser):
    c = Client(enforce_csrf_checks=True)
    c.force_login(superuser)
    assert c.post(reverse("admin:recsys_tune_slot", args=["for-you"]), FORM).status_code == 403
    assert not SlotConfig.objects.exists()


# --- Publish, history, rollback -----------------------------------------------------------------


def test_publish_versions_the_slot_and_the_engine_reads_it(boss):
    resp = boss.post(reverse("admin:recsys_tune_slot", args=["for-you"]), FORM)
    assert resp.status_code == 302
    row = SlotConfig.objects.get(slot="for-you")
    assert row.version == 1 and row.created_by == "boss" and row.note == "trending only"
    expected = {"strategies": {"popular/trending": 1.0}, "exclude_events": {"purchased": None, "item_viewed": 600},
                "limit": 5}
    assert {key: row.config[key] for key in expected} == expected

    assert engine.slot_config("for-you") == row.config
    audit = AuditEntry.objects.get(action="publish_slot")
    assert audit.user == "boss"
    from recsys.conf import DEFAULTS

    assert audit.diff["changes"]["strategies.content/interests"] == [
        DEFAULTS["SLOTS"]["for-you"]["strategies"]["content/interests"], None]
    assert audit.diff["changes"]["limit"] == [8, 5]
    page = boss.get(reverse("admin:recsys_tune_slot", args=["for-you"])).content.decode()
    assert "v1" in page and "trending only" in page and "strategies.content/interests" in page


def test_rollback_republishes_an_old_version(boss):
    url = reverse("admin:recsys_tune_slot", args=["for-you"])
    boss.post(url, FORM)
    boss.post(url, {**FORM, "limit": "3", "diversity": "0.3", "c:popular/trending:half_life_hours": "12"})
    assert engine.slot_config("for-you")["limit"] == 3
    assert engine.slot_config("for-you")["strategy_config"] == {"popular/trending": {"half_life_hours": 12.0}}
    resp = boss.post(reverse("admin:recsys_tune_rollback", args=["for-you", 1]))
    assert resp.status_code == 302
    live = SlotConfig.objects.filter(slot="for-you").order_by("-version").first()
    assert live.version == 3 and live.note == "rollback to v1"
    assert engine.slot_config("for-you") == SlotConfig.objects.get(slot="for-you", version=1).config
    assert AuditEntry.objects.filter(action="rollback_slot").count() == 1


def test_invalid_edits_are_refused_with_the_reason(boss):
    url = reverse("admin:recsys_tune_slot", args=["for-you"])
    resp = boss.post(url, {**FORM, "exclude": "purchased sometimes"})
    assert resp.status_code == 200 and "not a number of seconds" in resp.content.decode()
    resp = boss.post(url, {**FORM, "c:popular/trending:half_life_hours": '"long"'})
    assert "must be a number" in resp.content.decode()
    resp = boss.post(url, {**FORM, "w:popular/trending": "0"})
    assert "at least one strategy" in resp.content.decode()
    assert not SlotConfig.objects.exists()


def test_publishing_from_the_form_keeps_engine_keys_it_does_not_show(boss):
    from recsys.services import publishing

    live = {"strategies": {"popular/trending": 1.0}, "exclude_events": {}, "limit": 5,
            "freshness": {"weight": 0.2, "half_life_hours": 24}, "rules": [{"action": "bury", "item_ids": ["9"]}]}
    publishing.publish_slot_config("for-you", live, user="setup")
    resp = boss.post(reverse("admin:recsys_tune_slot", args=["for-you"]), FORM)
    assert resp.status_code == 302
    row = SlotConfig.objects.get(slot="for-you", active=True, version=2)
    assert row.config["freshness"] == live["freshness"] and row.config["rules"] == live["rules"]
    assert row.config["limit"] == 5 and row.config["strategies"] == {"popular/trending": 1.0}


def test_strategy_overrides_reach_the_strategy_instance():
    strategy = engine.build_strategy("popular/trending", {"half_life_hours": 5.0})
    assert strategy.config == {**type(strategy).DEFAULT_CONFIG, "half_life_hours": 5.0}


def test_interest_settings_publish_and_the_projection_selector(boss):
    from recsys.selectors import interest_settings

    resp = boss.post(reverse("admin:recsys_interest_settings"),
                     {"ew:item_viewed": "2.5", "ew:purchased": "", "new_event": "shared", "new_weight": "4",
                      "long_half_life": "100", "short_half_life": "1", "note": "x"})
    assert resp.status_code == 302
    assert InterestConfig.objects.get().version == 1
    tuned = interest_settings()
    assert tuned["EVENT_WEIGHTS"]["item_viewed"] == 2.5 and tuned["EVENT_WEIGHTS"]["shared"] == 4.0
    assert "purchased" not in tuned["EVENT_WEIGHTS"]
    assert tuned["LONG_TERM_HALF_LIFE_HOURS"] == 100.0
    boss.post(reverse("admin:recsys_interest_settings"),
              {"ew:item_viewed": "1", "long_half_life": "50", "short_half_life": "1"})
    assert interest_settings()["LONG_TERM_HALF_LIFE_HOURS"] == 50.0
    page = boss.get(reverse("admin:recsys_interest_settings")).content.decode()
    assert "Roll back to v1" in page and "LONG_TERM_HALF_LIFE_HOURS" in page
    assert boss.post(reverse("admin:recsys_interest_rollback", args=[1])).status_code == 302
    assert interest_settings()["LONG_TERM_HALF_LIFE_HOURS"] == 100.0
    assert InterestConfig.objects.order_by("-version").first().version == 3


def test_published_event_weights_change_what_the_projection_folds():
    """The interest projection reads the published weights: a zero weight leaves no trace."""
    from recsys.services import interests
    from recsys.services.publishing import publish_interest_config

    publish_interest_config({"EVENT_WEIGHTS": {"item_viewed": 0.0}}, user="t")
    add_event("v-zero", "item_viewed", "6")
    profiles: dict = {}
    interests.fold(list(Event.objects.filter(visitor_id="v-zero")), profiles)
    assert profiles["v-zero"].long_term is None and profiles["v-zero"].event_count == 1


# --- Preview -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_preview_shows_live_and_edited_lists_side_by_side(embedded_catalogue, superuser):
    from recsys.services import cooccurrence, interests

    for item in ("6", "7", "8"):  # Alien, Aliens, The Terminator
        add_event("v-scifi", "item_viewed", item, minutes_ago=30)
    for n in range(3):  # Casablanca is what everyone else watches
        add_event(f"crowd{n}", "item_viewed", "11", minutes_ago=1)
    interests.catch_up()
    cooccurrence.catch_up()  # associations and item popularity (trending), as the realtime task does
    c = Client()
    c.force_login(superuser)
    resp = c.post(reverse("admin:recsys_tune_preview", args=["for-you"]),
                  {**FORM, "exclude": "", "visitor": "v-scifi"})
    html = resp.content.decode()
    assert resp.status_code == 200
    live_html, edited_html = html.split('id="lr-edited"')
    assert "Matches your interest" in live_html or "Like what you are browsing" in live_html
    assert any(t in live_html for t in ("Star Wars", "Blade Runner"))
    assert "Casablanca" in edited_html and "Popular right now" in edited_html
    assert "Matches your" not in edited_html
    assert not SlotConfig.objects.exists()  # a preview publishes nothing


def test_preview_reports_an_invalid_edit(boss):
    resp = boss.post(reverse("admin:recsys_tune_preview", args=["for-you"]),
                     {**FORM, "w:popular/trending": "x", "visitor": "v1"})
    assert "must be a number" in resp.content.decode()


# --- Experiments ---------------------------------------------------------------------------------


def test_assignment_is_deterministic_and_follows_the_split():
    arms = [{"name": "A", "weight": 1}, {"name": "B", "weight": 3}]
    first = [abtest.assign(7, f"v{i}", arms)["name"] for i in range(4000)]
    assert first == [abtest.assign(7, f"v{i}", arms)["name"] for i in range(4000)]
    share_b = first.count("B") / len(first)
    assert 0.72 < share_b < 0.78
    other = [abtest.assign(8, f"v{i}", arms)["name"] for i in range(4000)]
    assert other != first  # another experiment reshuffles visitors


def test_wilson_interval_matches_known_values():
    low, high = abtest.wilson_interval(10, 100)
    assert low == pytest.approx(0.05523, abs=1e-4) and high == pytest.approx(0.17437, abs=1e-4)
    low, high = abtest.wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.16113, abs=1e-4)
    assert abtest.wilson_interval(0, 0) == (0.0, 1.0)


def _two_versions(boss):
    url = reverse("admin:recsys_tune_slot", args=["for-you"])
    boss.post(url, {**FORM, "limit": "2"})
    boss.post(url, {**FORM, "limit": "3"})


def test_experiment_lifecycle_report_and_promotion(boss, settings):
    settings.LIVEREC = {"ADMIN_MIN_GROUP_VISITORS": 2}
    _two_versions(boss)
    resp = boss.post(reverse("admin:recsys_experiments"),
                     {"name": "short lists", "slot": "for-you", "arm_name_0": "A", "arm_weight_0": "1", "arm_source_0": "1",
                      "arm_name_1": "B", "arm_weight_1": "1", "arm_source_1": "2"})
    assert resp.status_code == 302
    exp = Experiment.objects.get()
    assert exp.status == "draft" and [a["version"] for a in exp.arms] == [1, 2]
    boss.post(reverse("admin:recsys_experiment_action", args=[exp.pk]), {"action": "start"})
    exp.refresh_from_db()
    assert exp.status == "running"
    # The engine serves each visitor their arm's config.
    by_arm: dict[str, list[str]] = {"A": [], "B": []}
    for i in range(40):
        by_arm[abtest.assign(exp.pk, f"x{i}", exp.arms)["name"]].append(f"x{i}")
    assert engine.slot_config("for-you", by_arm["A"][0])["limit"] == 2
    assert engine.slot_config("for-you", by_arm["B"][0])["limit"] == 3
    # Impressions and clicks per arm, from the widgets' events.
    for vid in by_arm["A"][:3]:
        add_event(vid, "recommendation_shown", slot="for-you", rec_id="r")
        add_event(vid, "recommendation_shown", slot="for-you", rec_id="r")
        add_event(vid, "recommendation_clicked", "6", slot="for-you", rec_id="r")
    for vid in by_arm["B"][:3]:
        add_event(vid, "recommendation_shown", slot="for-you", rec_id="r")
    add_event(by_arm["B"][3], "recommendation_shown", slot="for-you", rec_id="r")
    page = boss.get(reverse("admin:recsys_experiment_report", args=[exp.pk])).content.decode()
    assert "Promote A" in page and "<svg" in page
    from recsys.stats import experiment_report

    rows = {r["name"]: r for r in experiment_report(exp)}
    assert (rows["A"]["visitors"], rows["A"]["impressions"], rows["A"]["clicks"]) == (3, 6, 3)
    assert rows["A"]["ctr"] == 0.5
    assert (rows["A"]["low"], rows["A"]["high"]) == pytest.approx(abtest.wilson_interval(3, 6))
    assert (rows["B"]["impressions"], rows["B"]["clicks"]) == (4, 0)
    boss.post(reverse("admin:recsys_experiment_action", args=[exp.pk]), {"action": "promote", "arm": "A"})
    exp.refresh_from_db()
    assert exp.status == "stopped" and exp.winner == "A"
    live = SlotConfig.objects.filter(slot="for-you").order_by("-version").first()
    assert live.version == 3 and live.config["limit"] == 2 and "winner A" in live.note
    assert engine.slot_config("for-you", by_arm["B"][0])["limit"] == 2  # experiment over: everyone gets the winner


def test_small_arms_are_suppressed(boss, settings):
    settings.LIVEREC = {"ADMIN_MIN_GROUP_VISITORS": 5}
    _two_versions(boss)
    from recsys.services import experiments as service
    from recsys.stats import experiment_report

    exp = service.create_experiment("e", "for-you", [{"name": "A", "version": 1}, {"name": "B", "version": 2}], user="t")
    service.start_experiment(exp.pk, user="t")
    exp.refresh_from_db()
    add_event("lonely", "recommendation_shown", slot="for-you", rec_id="r")
    rows = [r for r in experiment_report(exp) if r["visitors"]]
    assert rows and rows[0]["suppressed"] and rows[0]["impressions"] is None


def test_one_running_experiment_per_slot(boss):
    _two_versions(boss)
    from django.core.exceptions import ValidationError

    from recsys.services import experiments as service

    arms = [{"name": "A", "version": 1}, {"name": "B", "version": 2}]
    e1 = service.create_experiment("e1", "for-you", arms, user="t")
    e2 = service.create_experiment("e2", "for-you", arms, user="t")
    service.start_experiment(e1.pk, user="t")
    with pytest.raises(ValidationError, match="already has a running experiment"):
        service.start_experiment(e2.pk, user="t")


# --- Visitor inspector, export, forget -------------------------------------------------------------


def _visitor():
    add_event("v-inspect", "item_viewed", "6", minutes_ago=3)
    add_event("v-inspect", "searched", minutes_ago=2, query="space horror")
    VisitorProfile.objects.create(visitor_id="v-inspect", event_count=2, summary="Likes dark science fiction.",
                                  interests=[{"weight": 3.0, "label": "space horror"}, {"weight": 1.0, "label": "comedy"}],
                                  interest_vectors=pack_vectors([[1.0] + [0.0] * 383, [0.0, 1.0] + [0.0] * 382]))


def test_inspector_shows_timeline_interests_summary_and_recommendations(boss):
    _visitor()
    html = boss.get(reverse("admin:recsys_visitor", args=["v-inspect"])).content.decode()
    assert "Likes dark science fiction." in html
    assert "space horror" in html and "75%" in html  # 3 / (3 + 1) of the interest weight
    assert "item_viewed" in html and "searched" in html
    assert "Current recommendations" in html and "for-you" in html
    assert "Export JSON" in html and "Forget this visitor" in html


def test_export_downloads_json_and_forget_erases(boss, staff_factory):
    _visitor()
    viewer = staff_factory("recsys.view_visitorprofile")
    assert viewer.post(reverse("admin:recsys_visitor_export", args=["v-inspect"])).status_code == 403
    assert viewer.post(reverse("admin:recsys_visitor_forget", args=["v-inspect"]), {"confirm": "v-inspect"}).status_code == 403
    resp = boss.post(reverse("admin:recsys_visitor_export", args=["v-inspect"]))
    assert resp["Content-Disposition"].startswith("attachment")
    data = json.loads(resp.content)
    assert [e["name"] for e in data["events"]] == ["item_viewed", "searched"]
    assert data["profiles"][0]["summary"] == "Likes dark science fiction."
    # Forgetting needs the typed confirmation.
    boss.post(reverse("admin:recsys_visitor_forget", args=["v-inspect"]), {"confirm": "nope"})
    assert Event.objects.filter(visitor_id="v-inspect").count() == 2
    resp = boss.post(reverse("admin:recsys_visitor_forget", args=["v-inspect"]), {"confirm": "v-inspect"})
    assert resp.status_code == 302
    assert not Event.objects.filter(visitor_id="v-inspect").exists()
    assert not VisitorProfile.objects.filter(visitor_id="v-inspect").exists()
    entry = AuditEntry.objects.get(action="forget_visitor")
    assert (entry.diff["events_deleted"], entry.diff["profiles_deleted"]) == (2, 1)
    assert boss.get(reverse("admin:recsys_visitor", args=["v-inspect"])).status_code == 404


# --- Dashboard -----------------------------------------------------------------------------------


def test_dashboard_counts_and_suppresses_small_groups(boss, settings):
    settings.LIVEREC = {"ADMIN_MIN_GROUP_VISITORS": 3}
    for n in range(4):
        add_event(f"d{n}", "recommendation_shown", slot="for-you", rec_id="r", strategy="content/interests")
        add_event(f"d{n}", "recommendation_shown", slot="for-you", rec_id="r", strategy="content/interests")
    add_event("d0", "recommendation_clicked", "6", slot="for-you", rec_id="r", strategy="content/interests")
    add_event("solo", "recommendation_shown", slot="similar", rec_id="r")
    html = boss.get(reverse("admin:recsys_dashboard")).content.decode()
    from recsys.stats import recommendation_metrics

    rows = {r["slot"]: r for r in recommendation_metrics(timezone.now() - timedelta(hours=1))}
    assert (rows["for-you"]["impressions"], rows["for-you"]["clicks"]) == (8, 1)
    assert rows["similar"]["suppressed"] and "impressions" not in rows["similar"]
    assert "suppressed (fewer than 3 visitors)" in html
    assert html.count("<svg") >= 2
    assert "liverec.realtime" in html


# --- Evaluation runs -----------------------------------------------------------------------------


class StubEvaluate(BaseCommand):
    """Stands in for the evaluation issue's ``recsys_evaluate`` in this test only."""

    def add_arguments(self, parser):
        parser.add_argument("--protocol", default="loo")

    def handle(self, *args, **options):
        self.stdout.write("scoring 50%")
        self.stdout.write(json.dumps({"rows": [{"model": "for-you", "HR@10": 0.25, "NDCG@10": 0.125},
                                               {"model": "popularity", "HR@10": 0.08, "NDCG@10": 0.04}],
                                      "protocol": options["protocol"]}))


def test_evaluation_run_flow(boss, monkeypatch, django_capture_on_commit_callbacks):
    from django.core import management

    from recsys import tasks
    from recsys.services import evaluation_jobs

    monkeypatch.setattr(evaluation_jobs, "command_available", lambda: True)
    monkeypatch.setattr(evaluation_jobs, "call_command",
                        lambda name, **kw: management.call_command(StubEvaluate(), **kw))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resp = boss.post(reverse("admin:recsys_evaluations"), {"params": '{"protocol": "stream"}'})
    assert resp.status_code == 302 and len(callbacks) == 1  # the Celery job is enqueued on commit
    run = EvaluationRun.objects.get()
    assert run.status == "queued" and run.params == {"protocol": "stream"}
    assert tasks.run_evaluation(run.pk) == "done"
    assert tasks.run_evaluation(run.pk) == "skipped"  # idempotent on redelivery
    run.refresh_from_db()
    assert run.status == "done" and run.progress == 1.0 and run.results["protocol"] == "stream"
    html = boss.get(reverse("admin:recsys_evaluations")).content.decode()
    assert "HR@10" in html and "0.2500" in html and "popularity" in html and "<svg" in html
    status = boss.get(reverse("admin:recsys_evaluation_status", args=[run.pk])).json()
    assert status == {"id": run.pk, "status": "done", "progress": 1.0}


def test_evaluation_run_failure_is_recorded(monkeypatch):
    from recsys.services import evaluation_jobs

    def boom(name, **kw):
        raise RuntimeError("no ratings file")

    monkeypatch.setattr(evaluation_jobs, "call_command", boom)
    run = EvaluationRun.objects.create(params={})
    assert evaluation_jobs.execute_run(run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "no ratings file" in run.log


def test_evaluation_page_says_when_the_command_is_missing(boss, monkeypatch):
    """A host site that installs recsys without the evaluation extras sees why runs can't start."""
    from recsys.services import evaluation_jobs

    monkeypatch.setattr(evaluation_jobs, "command_available", lambda: False)
    html = boss.get(reverse("admin:recsys_evaluations")).content.decode()
    assert "is not installed" in html
    resp = boss.post(reverse("admin:recsys_evaluations"), {"params": "{}"})
    assert "is not installed" in resp.content.decode() and not EvaluationRun.objects.exists()


def test_an_arm_can_snapshot_the_live_config(boss):
    boss.post(reverse("admin:recsys_tune_slot", args=["for-you"]), {**FORM, "limit": "4"})
    resp = boss.post(reverse("admin:recsys_experiments"),
                     {"name": "live vs v1", "slot": "for-you", "arm_name_0": "live", "arm_source_0": "live",
                      "arm_name_1": "v1", "arm_source_1": "1", "arm_weight_1": "2"})
    assert resp.status_code == 302
    exp = Experiment.objects.get()
    assert exp.arms[0] == {"name": "live", "weight": 1.0, "config": engine.slot_config("for-you")}
    assert exp.arms[1] == {"name": "v1", "weight": 2.0, "version": 1}
    resp = boss.post(reverse("admin:recsys_experiments"), {"name": "one arm", "slot": "for-you", "arm_source_0": "1"})
    assert "two or more arms" in resp.content.decode()

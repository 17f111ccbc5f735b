"""Offline evaluation of the real engine (see recsys/evaluation/runner.py for what runs)."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recsys.evaluation import fusion_search, runner, splits
from recsys.strategies import registry


class Command(BaseCommand):
    help = ("Evaluate the default slot, each strategy alone and the popularity/item-kNN baselines on "
            "an events file (or this site's log) with full ranking, in a fresh isolated database.")

    def add_arguments(self, parser):
        parser.add_argument("--events", help="EVENTS.csv: user_id,item_id,event,timestamp[,value]; "
                                             "without --events/--items the site's own log is evaluated")
        parser.add_argument("--items", help="ITEMS.csv: item_id,title[,text][,categories separated by |]")
        parser.add_argument("--protocol", choices=list(runner.PROTOCOLS), default="loo")
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument("--slot", default=runner.DEFAULT_SLOT, help="the slot of the default row")
        parser.add_argument("--strategies", help="comma-separated strategy ids to evaluate alone (default: all registered)")
        parser.add_argument("--validation", action="store_true",
                            help="predict the validation targets instead (for tuning; the test targets are dropped)")
        parser.add_argument("--threads", type=int, default=1, help="torch threads for batch model training")
        parser.add_argument("--json", dest="json_path", help="also write the report as JSON here")
        parser.add_argument("--ablations", nargs="?", const=True, default=False,
                            help="add a row for the slot without each of its strategies (e.g. without content); "
                                 "a comma-separated list of strategy ids limits it to those")
        parser.add_argument("--tune-weights", nargs="?", const=True, default=False, metavar="SCORES.json",
                            help="also search the slot's fusion weights on the targets (with --validation) and "
                                 "print the best vs the current ones; a path saves the collected candidate "
                                 "scores there, to search again with `python -m recsys.evaluation.fusion_search`")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        if bool(opts["events"]) != bool(opts["items"]):
            raise CommandError("give both --events and --items, or neither (to evaluate this site's log)")
        if opts["k"] < 1:
            raise CommandError("--k must be at least 1")
        if opts["events"]:
            try:
                events, items = splits.read_events(opts["events"]), splits.read_items(opts["items"])
            except (OSError, ValueError, KeyError) as exc:
                raise CommandError(str(exc)) from exc
        else:
            events, items = runner.site_log()
        if not events or not items:
            raise CommandError("nothing to evaluate: no events or no items")
        strategies = [s.strip() for s in opts["strategies"].split(",") if s.strip()] if opts["strategies"] else None
        if strategies:
            for sid in strategies:
                registry.get(sid)  # names the valid ids if unknown
        ablations = opts["ablations"]
        if isinstance(ablations, str):
            ablations = [s.strip() for s in ablations.split(",") if s.strip()]

            for sid in ablations:
                registry.get(sid)
        bars: list[tqdm] = []

        def progress(label: str, total: int | None):
            for old in bars:  # one bar at a time: each stage ends before the next starts
                old.close()
            bar = tqdm(total=total, desc=label, unit="", disable=opts["no_progress"], file=self.stderr._out)
            bars.append(bar)
            return bar.update

        with runner.isolated_database() as name:
            if opts["verbosity"] > 1:
                self.stderr.write(f"isolated database: {name}")
            report = runner.evaluate(events, items, opts["protocol"], opts["k"], slot=opts["slot"],
                                     strategies=strategies, validation=opts["validation"],
                                     threads=opts["threads"], ablations=ablations,
                                     tune_weights=bool(opts["tune_weights"]), progress=progress)
        for bar in bars:
            bar.close()
        self.stdout.write(report.table())
        if report.tuning is not None:
            if not opts["validation"]:
                self.stderr.write("note: weights tuned on test targets; choose them with --validation")
            self.stdout.write(fusion_search.describe(report.tuning))
            if isinstance(opts["tune_weights"], str):
                with open(opts["tune_weights"], "w", encoding="utf-8") as fh:
                    json.dump(report.collected, fh)
                self.stdout.write(f"candidate scores written to {opts['tune_weights']}")
        if opts["json_path"]:
            with open(opts["json_path"], "w", encoding="utf-8") as fh:
                json.dump(report.as_dict(), fh, indent=2)
            self.stdout.write(f"JSON written to {opts['json_path']}")

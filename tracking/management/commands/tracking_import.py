"""``manage.py tracking_import events.csv``: bulk-import past events into the log."""
from __future__ import annotations

import csv
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from tracking import imports
from tracking.validation import ValidationError


class Command(BaseCommand):
    help = ("Import events from CSV (columns user_id,item_id,event,timestamp[,value]; header optional; "
            "timestamp in unix seconds or ISO 8601). Re-importing the same rows is harmless.")

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file, or - for standard input")
        parser.add_argument("--visitor-prefix", default="", help='prefix for visitor ids, e.g. "ml-"')
        parser.add_argument("--chunk-size", type=int, default=imports.CHUNK_SIZE,
                            help="rows per committed transaction (default %(default)s)")
        parser.add_argument("--errors", metavar="FILE", help="write every rejected line and its reason to FILE (CSV)")
        parser.add_argument("--show-errors", type=int, default=20, help="rejected lines to print (default %(default)s)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, path: str, visitor_prefix: str, chunk_size: int, errors: str | None,
               show_errors: int, no_progress: bool, **opts):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        try:
            fh = sys.stdin if path == "-" else open(path, newline="", encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        started = time.perf_counter()
        bar = tqdm(desc="importing events", unit="ev", disable=no_progress or None, file=sys.stderr)
        try:
            with fh:
                report = imports.import_csv(fh, visitor_prefix=visitor_prefix, chunk_size=chunk_size,
                                            progress=bar.update)
        except ValidationError as exc:
            raise CommandError(exc.reason) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8: {exc}") from exc
        finally:
            bar.close()
        self.report(report, time.perf_counter() - started, errors, show_errors)

    def report(self, report: imports.ImportReport, seconds: float, errors: str | None, show_errors: int) -> None:
        rate = report.rows / seconds if seconds > 0 else 0.0
        self.stdout.write(f"{report.rows} rows: {report.accepted} imported, {report.duplicate} already in the log, "
                          f"{len(report.rejected)} rejected ({seconds:.1f} s, {rate:,.0f} rows/s)")
        for line, reason in report.rejected[:show_errors]:
            self.stderr.write(f"line {line}: {reason}")
        if len(report.rejected) > show_errors:
            self.stderr.write(f"... and {len(report.rejected) - show_errors} more" +
                              ("" if errors else " (use --errors FILE to list them all)"))
        if errors:
            with open(errors, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(["line", "reason"])
                writer.writerows(report.rejected)

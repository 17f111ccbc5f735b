"""Export what is kept about a visitor (or user) as JSON."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from tracking import privacy


class Command(BaseCommand):
    help = "Export a visitor's or user's events and derived profile as JSON (stdout or --output)."

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--visitor", help="visitor id (the lr_vid cookie)")
        who.add_argument("--user", help="user id")
        parser.add_argument("--output", "-o", help="write to this file instead of stdout")

    def handle(self, *args, **opts):
        data = privacy.export_user(opts["user"]) if opts["user"] else privacy.export_visitor(opts["visitor"])
        text = json.dumps(data, indent=2, ensure_ascii=False)
        if opts["output"]:
            with open(opts["output"], "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            self.stderr.write(f"Wrote {len(data['events'])} events to {opts['output']}")
        else:
            self.stdout.write(text)

"""Erase a visitor (or user): their events and everything derived from them."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from tracking import privacy


class Command(BaseCommand):
    help = "Forget a visitor or a signed-in user: delete their events and every projection of them."

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--visitor", help="visitor id (the lr_vid cookie)")
        who.add_argument("--user", help="user id (every visitor id the user was seen under is forgotten too)")

    def handle(self, *args, **opts):
        try:
            report = privacy.forget_user(opts["user"]) if opts["user"] else privacy.forget_visitor(opts["visitor"])
        except Exception as exc:
            raise CommandError(f"forget failed, nothing was erased (one transaction): {exc}") from exc
        self.stdout.write(json.dumps(report, indent=2))

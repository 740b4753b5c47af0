"""`manage.py setup_demo`: create (or reset) the demo's site user and staff user."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEMO_URL = "http://127.0.0.1:8000"

# Fixed, published passwords: that is why the command refuses to run outside DEBUG.
DEMO_USERS = (
    {
        "username": "demo",
        "email": "demo@example.com",
        "password": "demo-password",
        "is_staff": False,
        "is_superuser": False,
        "role": "site user",
    },
    {
        "username": "staff",
        "email": "staff@example.com",
        "password": "staff-password",
        "is_staff": True,
        "is_superuser": True,
        "role": "staff (admin at /admin/)",
    },
)


class Command(BaseCommand):
    help = (
        "Create or reset the demo users 'demo' and 'staff' with fixed, published passwords. "
        "Refuses to run with DEBUG off unless --force is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (creates users whose passwords are public).",
        )

    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "setup_demo creates users with publicly known passwords, so it only runs "
                "with DEBUG on. Pass --force if this really is a throwaway demo site."
            )
        user_model = get_user_model()
        for spec in DEMO_USERS:
            # Resetting every attribute each run makes the command idempotent: whatever
            # happened to these accounts, afterwards they are exactly as printed.
            user, created = user_model.objects.update_or_create(
                username=spec["username"],
                defaults={
                    "email": spec["email"],
                    "is_active": True,
                    "is_staff": spec["is_staff"],
                    "is_superuser": spec["is_superuser"],
                },
            )
            user.set_password(spec["password"])
            user.save(update_fields=["password"])
            self.stdout.write(f"{'Created' if created else 'Updated'} user {spec['username']!r}.")

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"The demo runs at {DEMO_URL}"))
        for spec in DEMO_USERS:
            self.stdout.write(
                f"  {spec['role']:<26} username: {spec['username']:<6} password: {spec['password']}"
            )

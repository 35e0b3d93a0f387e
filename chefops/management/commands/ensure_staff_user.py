from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from companies.models import User


class Command(BaseCommand):
    help = (
        "Create the platform staff login for the Django admin if it does not exist. "
        "E-mail/password from DJANGO_ADMIN_EMAIL / DJANGO_ADMIN_PASSWORD "
        "(development default: admin@chefops.local / chefops-admin)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        email = os.environ.get("DJANGO_ADMIN_EMAIL", "admin@chefops.local").lower()
        password = os.environ.get("DJANGO_ADMIN_PASSWORD", "")
        if not password:
            if settings.IS_PRODUCTION_LIKE:
                raise CommandError("DJANGO_ADMIN_PASSWORD is required outside development")
            password = "chefops-admin"  # noqa: S105 - documented development default
        if User.objects.filter(email=email).exists():
            self.stdout.write(f"staff user {email} already exists")
            return
        User.objects.create_superuser(email, password)
        self.stdout.write(f"staff user created: {email} (admin login at /admin/)")

"""E-mail delivery for outbox handlers: templates/emails/<name>.txt + .html, Django backend."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def message_id_for(event_id: Any, handler: str, recipient: str) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].rstrip(">") or "chefops.local"
    return f"<{event_id}.{handler}.{recipient}@{domain}>"


def send_templated_email(
    *,
    template: str,
    to: Iterable[str],
    context: dict[str, Any],
    event_id: Any,
    handler: str,
) -> int:
    """Render ``emails/<template>.txt`` / ``.html`` (first line of the .txt is the subject)
    and send one message per recipient. The Message-ID derives from the event id so that a
    re-delivered event produces the same Message-ID and receivers can de-duplicate it."""
    context = {"frontend_url": settings.FRONTEND_URL, **context}
    text = render_to_string(f"emails/{template}.txt", context)
    subject, _, body = text.partition("\n")
    html = render_to_string(f"emails/{template}.html", context)
    sent = 0
    for recipient in sorted(set(to)):
        message = EmailMultiAlternatives(
            subject=subject.removeprefix("Subject:").strip(),
            body=body.lstrip("\n"),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[recipient],
            headers={"Message-ID": message_id_for(event_id, handler, recipient)},
        )
        message.attach_alternative(html, "text/html")
        sent += message.send(fail_silently=False)
    return sent

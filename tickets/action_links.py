"""Signed one-click links in notifications: acknowledge, resolve (with a reason) or silence a ticket.

A link is ``/act/<token>``; the token is ``<payload>.<signature>``, the payload (base64url of
``v1|ticket|action|target|expires|nonce``) HMAC-SHA256-signed with the link key (``notifications.link_key``,
else a key derived from the session secret: :func:`link_key`). A link

- **expires** ``notifications.link_ttl_h`` after its notification was sent (the expiry is in the signed
  payload: nobody can stretch it),
- works **once**: its random nonce becomes the primary key of an ``action_link_use`` row in the same
  transaction as the ticket change, so a second use (even a concurrent one) is refused by the store,
- is **audited**: the change is made as ``link:<target name>`` (the target the notification went to) and the
  ticket's trail gets a ``link_used`` row with the action, the link's nonce, its expiry and the client's
  address - who, what, when.

``GET /act/<token>`` only shows what the link will do (mail scanners and chat previews fetch links: a GET
never changes anything); the form's button POSTs it. A tampered, expired or used link gets an error page
saying which. The links are never stored: :func:`footer` signs them at delivery time (tickets/notify.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy.exc import IntegrityError

from core.vocabulary import Priority
from tickets import silences
from tickets.errors import InvalidTransition
from tickets.models import Ticket
from tickets.oncall_models import ActionLinkUse
from tickets.secret_file import session_secret
from tickets.service import ACKNOWLEDGEABLE, TicketService
from tickets.settings import TicketsConfig

Action = Literal["acknowledge", "resolve", "silence"]
ACTIONS: tuple[Action, ...] = ("acknowledge", "resolve", "silence")
ACTIONABLE_KINDS = ("opened", "reopened", "escalated")
"""The notifications that carry links (a resolution or an acknowledgement has nothing left to act on)."""
_VERSION = "v1"


class LinkError(Exception):
    """A link that cannot be used; the message says why, for the person who clicked it."""


class LinkInvalid(LinkError):
    pass


class LinkExpired(LinkError):
    pass


class LinkUsed(LinkError):
    pass


@dataclass(frozen=True, slots=True)
class Link:
    ticket_id: int
    action: Action
    target: int
    expires_at: datetime
    nonce: str


def link_key(settings: TicketsConfig) -> bytes:
    """``notifications.link_key``, else HMAC(session secret, purpose): the cookie key never signs links."""
    configured = settings.notifications.link_key
    if configured is not None:
        return configured.get_secret_value().encode()
    secret = session_secret(settings).encode()
    return hmac.new(secret, b"hypercare one-click links v1", hashlib.sha256).digest()


def link_key_available(settings: TicketsConfig) -> bool:
    """Whether a key exists without generating one (a store used only by the CLI may have none yet)."""
    return (
        settings.notifications.link_key is not None
        or settings.secret_key is not None
        or (Path(settings.data_dir) / "secret_key").is_file()
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, link: Link) -> str:
    expires = int(link.expires_at.timestamp())
    payload = f"{_VERSION}|{link.ticket_id}|{link.action}|{link.target}|{expires}|{link.nonce}".encode()
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def new_link(ticket_id: int, action: Action, target: int, expires_at: datetime) -> Link:
    return Link(ticket_id, action, target, expires_at, secrets.token_hex(16))


def verify(key: bytes, token: str, now: datetime) -> Link:
    """The link the token stands for; :class:`LinkInvalid` if it was not signed with ``key`` (tampered,
    cut short, or signed with a key since changed), :class:`LinkExpired` past its expiry."""
    tampered = LinkInvalid(
        "This link is not valid: it was changed, cut short or signed with a key that has since been "
        "replaced. Open the ticket from the queue instead."
    )
    try:
        payload_text, signature_text = token.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except ValueError:
        raise tampered from None
    if not hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).digest(), signature):
        raise tampered
    try:
        version, ticket, action, target, expires, nonce = payload.decode("ascii").split("|")
        at = datetime.fromtimestamp(int(expires), UTC)
        ticket_id, target_index = int(ticket), int(target)
    except (ValueError, OverflowError):
        raise tampered from None
    if version != _VERSION or action not in ACTIONS:
        raise tampered
    link = Link(ticket_id, action, target_index, at, nonce)
    if now >= link.expires_at:
        raise LinkExpired(
            f"This link expired at {link.expires_at:%Y-%m-%d %H:%M} UTC. "
            "Open the ticket from the queue instead."
        )
    return link


def footer(settings: TicketsConfig, key: bytes, ticket_id: int, target: int, now: datetime) -> str:
    """The lines a notification ends with: one signed link per action, each usable once."""
    expires = now + timedelta(hours=settings.notifications.link_ttl_h)
    base = settings.server.base_url()
    labels = {
        "acknowledge": "Acknowledge",
        "resolve": "Resolve",
        "silence": f"Silence {settings.notifications.link_silence_h:g} h",
    }
    lines = [
        f"{labels[action]}: {base}/act/{sign(key, new_link(ticket_id, action, target, expires))}"
        for action in ACTIONS
    ]
    return "\n".join(["", f"One-click (each link works once, until {expires:%Y-%m-%d %H:%M} UTC):", *lines])


def actor(settings: TicketsConfig, link: Link) -> str:
    """Who acts through the link: the target its notification went to."""
    targets = settings.notifications.targets
    name = targets[link.target].name if 0 <= link.target < len(targets) else None
    return f"link:{name or f'target-{link.target}'}"


def used(service: TicketService, link: Link) -> ActionLinkUse | None:
    return service.session.get(ActionLinkUse, link.nonce)


def describe(link: Link, ticket: Ticket, settings: TicketsConfig) -> str:
    """What the link will do, in words, for the page shown before it does it."""
    if link.action == "acknowledge":
        return f"Acknowledge ticket #{ticket.id}: you take it, and its escalation stops."
    if link.action == "resolve":
        return f"Resolve ticket #{ticket.id} with the reason you give below."
    hours = settings.notifications.link_silence_h
    return f"Silence the notifications of ticket #{ticket.id} (and of tickets matching it) for {hours:g} h."


def silence_matchers(ticket: Ticket) -> silences.SilenceMatchers:
    """What a silence link mutes: the ticket's check (or category) on its source, at its priority."""
    fields: dict[str, object] = {"source": ticket.source, "priorities": [Priority(ticket.priority)]}
    if ticket.check_id:
        fields["check"] = ticket.check_id
    else:
        fields["category"], fields["labels"] = ticket.category, dict(ticket.labels or {})
    return silences.SilenceMatchers.model_validate(fields)


def use(service: TicketService, link: Link, *, reason: str = "", address: str | None = None) -> str:
    """Do what the link says, once, in the service's transaction (the caller commits); returns what was
    done, in words. Raises :class:`LinkUsed`, :class:`InvalidTransition`, ``ValueError`` (no reason)."""
    settings, now = service.settings, service.now()
    who = actor(settings, link)
    ticket = service.locked(link.ticket_id)  # concurrent uses of one link queue up here
    if used(service, link) is not None:
        raise LinkUsed("This link has already been used; each link works once.")
    if link.action == "acknowledge":
        if ticket.status not in ACKNOWLEDGEABLE:
            raise InvalidTransition(ticket.id, ticket.status, "acknowledge")
        service.acknowledge(ticket.id, who)
        done = f"Ticket #{ticket.id} acknowledged."
    elif link.action == "resolve":
        if not reason.strip():
            raise ValueError("resolving needs a reason: say what fixed it")
        service.resolve(ticket.id, who, reason)
        done = f"Ticket #{ticket.id} resolved."
    else:
        hours = settings.notifications.link_silence_h
        silence = silences.create(
            service.session,
            matchers=silence_matchers(ticket),
            starts_at=now,
            ends_at=now + timedelta(hours=hours),
            created_by=who,
            role="oncall",
            limits=settings.security.silence_max_hours,
            comment=f"one-click link of ticket #{ticket.id}",
            now=now,
        )
        service.audit(ticket, who, "silenced", now, silence_id=silence.id, hours=hours)
        done = f"Notifications of ticket #{ticket.id} silenced for {hours:g} h (silence {silence.id})."
    service.audit(
        ticket,
        who,
        "link_used",
        now,
        link_action=link.action,
        nonce=link.nonce,
        expires_at=link.expires_at.isoformat(),
        address=address,
    )
    try:
        with service.session.begin_nested():
            service.session.add(
                ActionLinkUse(
                    nonce=link.nonce,
                    ticket_id=ticket.id,
                    action=link.action,
                    used_by=who,
                    used_at=now,
                    address=address,
                )
            )
    except IntegrityError:
        raise LinkUsed("This link has already been used; each link works once.") from None
    return done

"""Users, roles, passwords and scoped API tokens.

Passwords are hashed with argon2id (argon2-cffi; OWASP's minimum profile: 19 MiB, t=2, p=1, ~35 ms). Hashes
made by earlier versions with scrypt still verify and are upgraded to argon2 at the next successful login;
so are argon2 hashes with weaker parameters than today's.

API tokens are random and shown once; only their SHA-256 and a short prefix (to recognise them in a list)
are stored. Each token carries scopes; what it may do is its scopes *and* its user's role allows, checked at
every use, so demoting a user narrows their tokens at once.

Who a request acts as is decided here and only here, from facts about the stored user and token, however
they were fetched: :func:`session_access` (a login session: an active user, their role's scopes) and
:func:`token_access` (a bearer token: unrevoked, its user active, its scopes within the role, whether its
use is due to be recorded). The general path (``tickets/api/deps.py``, ``tickets/ui/web.py``) loads the rows
with the ORM; the event loop's cache-hit lookups (``tickets/hot_reads.py``) fetch the same facts in one
statement and hand them to the same functions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import utcnow
from tickets.models import ROLES, ApiToken, User

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
TOKEN_PREFIX = "hc_"  # noqa: S105 - the public prefix of every token, not a secret
_MAXMEM = 64 * 1024 * 1024
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

SCOPES: dict[str, str] = {
    "tickets:read": "list and read tickets",
    "tickets:write": "act on tickets: acknowledge, assign, comment, change state or priority, resolve",
    "events:write": "post events (POST /api/v1/events)",
    "alerts:write": "post Alertmanager webhooks (POST /api/v1/alertmanager)",
    "reports:write": "file exception reports and read one's own",
    "reports:read": "read every report and its attachments",
    "admin": "administer users, tokens and settings",
}
_WORK = ("tickets:read", "tickets:write", "events:write", "reports:read", "reports:write")
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"tickets:read", "reports:read"}),
    "reporter": frozenset({"reports:write"}),
    "agent": frozenset(_WORK),
    "oncall": frozenset({*_WORK, "alerts:write"}),
    "manager": frozenset({"tickets:read", "reports:read", "reports:write"}),
    "admin": frozenset(SCOPES),
}
"""What each role may do; a token's scopes are a subset of its user's role's."""


def roles_with(scope: str) -> tuple[str, ...]:
    """The roles allowed ``scope``, in the order of :data:`ROLES`."""
    return tuple(role for role in ROLES if scope in ROLE_SCOPES[role])


# --- passwords ---------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash in the PHC string format (``$argon2id$v=19$m=...``)."""
    return _hasher.hash(password)


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=salt,
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=_MAXMEM,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def verify_password(password: str, stored: str) -> bool:
    """Check a password against an argon2 hash or a legacy ``scrypt$N$r$p$salt$hash``; False if malformed."""
    if stored.startswith("$argon2"):
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    return _verify_scrypt(password, stored)


def needs_rehash(stored: str) -> bool:
    """True for a legacy scrypt hash or an argon2 hash with other parameters than today's."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


# Checked against when the user does not exist, so a login takes as long for a wrong name as for a wrong
# password (no user enumeration by timing). Computed lazily: no work at import time.
_dummy_hash: str | None = None


def _dummy() -> str:
    global _dummy_hash  # noqa: PLW0603 - a lazily computed constant
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password must have at most {MAX_PASSWORD_LENGTH} characters")


# --- users -------------------------------------------------------------------------------------------


def check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")


def create_user(session: Session, username: str, password: str, role: str, display_name: str = "") -> User:
    """Add a user. Raises ValueError with the reason on a bad name or role, a taken name, a short password."""
    if not USERNAME_RE.fullmatch(username):
        raise ValueError(
            f"username {username!r} is not valid: 1-64 letters, digits or . _ @ -, starting with a letter "
            "or digit"
        )
    check_role(role)
    _check_password(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name[:128],
        role=role,
        password_hash=hash_password(password),
        active=True,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise ValueError(f"user {username!r} already exists") from None
    log.info("user created", extra={"username": username, "role": role})
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"no user named {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def disable_user(session: Session, username: str) -> User:
    """Disable a user: no login, and none of their tokens work any more (the tokens stay listed)."""
    user = get_user(session, username)
    user.active = False
    session.flush()
    log.info("user disabled", extra={"username": username})
    return user


def set_password(session: Session, user: User, password: str) -> None:
    _check_password(password)
    user.password_hash = hash_password(password)
    session.flush()


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (in about the same time either way).

    A successful login upgrades a legacy (scrypt) or weaker hash to today's argon2 parameters; the caller
    commits."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        verify_password(password, _dummy())
        return None
    if not verify_password(password, user.password_hash) or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
        log.info("password hash upgraded to argon2", extra={"username": username})
    return user


# --- tokens ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the user and what the token used may do."""

    user: User
    scopes: frozenset[str]
    token_id: int | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_scopes(row: ApiToken) -> frozenset[str]:
    """What the token may do now: its scopes (or its role's defaults) within its user's role."""
    return scopes_within(row.user.role, row.scopes)


def scopes_within(role: str, scopes: str | None) -> frozenset[str]:
    """A token's space-separated ``scopes`` (None: the role's defaults) within what ``role`` allows."""
    allowed = ROLE_SCOPES.get(role, frozenset())
    return allowed if scopes is None else frozenset(scopes.split()) & allowed


def create_token(session: Session, user: User, name: str, scopes: Iterable[str] | None = None) -> str:
    """A new API token for the user; the plaintext is returned once and never stored.

    ``scopes`` default to everything the user's role allows; asking for more than the role allows, or an
    unknown scope, is a ValueError naming it."""
    if not name.strip() or len(name) > 64:
        raise ValueError("a token needs a name of 1-64 characters")
    allowed = ROLE_SCOPES.get(user.role, frozenset())
    chosen = sorted(allowed if scopes is None else set(scopes))
    for scope in chosen:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}: one of {', '.join(SCOPES)}")
        if scope not in allowed:
            raise ValueError(f"role {user.role!r} of {user.username!r} does not allow scope {scope!r}")
    if not chosen:
        raise ValueError("a token needs at least one scope")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name.strip(),
            token_hash=token_hash(token),
            prefix=token[:12],
            scopes=" ".join(chosen),
            created_at=utcnow(),
        )
    )
    session.flush()
    log.info(
        "api token created",
        extra={"username": user.username, "token_name": name, "prefix": token[:12], "scopes": chosen},
    )
    return token


LAST_USED_RESOLUTION = timedelta(minutes=1)
"""How finely a token's last use is recorded."""


# --- who a request acts as: the one decision ----------------------------------------------------------

MAX_TOKEN_LENGTH = 256


def plausible_token(token: str) -> bool:
    """Whether a presented bearer token could be one of ours (else it is refused without a lookup)."""
    return token.startswith(TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH


def session_uid(value: object) -> int | None:
    """The user id a login session holds, if it holds one (anything else: nobody is logged in)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31:
        return value
    return None


def session_access(*, active: bool, role: str) -> frozenset[str] | None:
    """What the user of a login session may do: their role's scopes; None for a disabled user."""
    return scopes_within(role, None) if active else None


@dataclass(frozen=True, slots=True)
class TokenAccess:
    scopes: frozenset[str]
    """The token's scopes within its user's role."""
    record_use: bool
    """Its last use is due to be recorded (to the minute: :data:`LAST_USED_RESOLUTION`)."""


def token_access(
    *,
    revoked_at: datetime | None,
    active: bool,
    role: str,
    scopes: str | None,
    last_used_at: datetime | None,
    now: datetime,
) -> TokenAccess | None:
    """What a stored token may do now; None for a revoked token or one whose user is disabled."""
    if revoked_at is not None or not active:
        return None
    # Recorded to the minute: one integration's token on every request would otherwise make each request a
    # write to one hot row (every concurrent webhook queued on its lock and a commit flush).
    due = last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION
    return TokenAccess(scopes_within(role, scopes), record_use=due)


def principal_for_token(
    session: Session, token: str, *, now: Callable[[], datetime] = utcnow
) -> Principal | None:
    """The active user owning this unrevoked token with its scopes (its last use is recorded), else None."""
    if not plausible_token(token):
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None:
        return None
    used = now()
    access = token_access(
        revoked_at=row.revoked_at,
        active=row.user.active,
        role=row.user.role,
        scopes=row.scopes,
        last_used_at=row.last_used_at,
        now=used,
    )
    if access is None:
        return None
    if access.record_use:
        row.last_used_at = used
        session.flush()
    return Principal(row.user, access.scopes, row.id)


def user_for_token(session: Session, token: str, *, now: Callable[[], datetime] = utcnow) -> User | None:
    """The active user owning this unrevoked token (and its last use is recorded), else None."""
    principal = principal_for_token(session, token, now=now)
    return principal.user if principal else None


def find_token(session: Session, ref: str) -> ApiToken:
    """A token by id (``12``) or by the start of its prefix (``hc_AbC``), as shown by a listing."""
    ref = ref.strip()
    if ref.isdigit():
        row = session.get(ApiToken, int(ref))
        if row is None:
            raise ValueError(f"no API token with id {ref}")
        return row
    if len(ref) < 6:
        raise ValueError("give a token's id or at least 6 characters of its prefix")
    rows = list(
        session.scalars(select(ApiToken).where(ApiToken.prefix.startswith(ref[:12], autoescape=True)))
    )
    if not rows:
        raise ValueError(f"no API token with prefix {ref!r}")
    if len(rows) > 1:
        ids = ", ".join(str(r.id) for r in rows)
        raise ValueError(f"prefix {ref!r} matches several tokens ({ids}); give the id")
    return rows[0]


def revoke_token(session: Session, token_id: int | str) -> ApiToken:
    """Revoke a token by id or prefix (from a listing); revoking twice is harmless."""
    row = find_token(session, str(token_id))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
        log.info("api token revoked", extra={"token_id": row.id, "prefix": row.prefix})
    return row


def list_tokens(session: Session, username: str | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if username is not None:
        query = query.where(ApiToken.user_id == get_user(session, username).id)
    return list(session.scalars(query))

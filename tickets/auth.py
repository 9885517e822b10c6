"""Users, roles, passwords and scoped API tokens.

Passwords are hashed with argon2id (argon2-cffi; OWASP's minimum profile: 19 MiB, t=2, p=1, ~35 ms). Hashes
made by earlier versions with scrypt still verify and are upgraded to argon2 at the next successful login;
so are argon2 hashes with weaker parameters than today's.

API tokens are random and shown once; only their SHA-256 and a short prefix (to recognise them in a list)
are stored. Each token carries scopes; what it may do is its scopes *and* its user's role allows, checked at
every use, so demoting a user narrows their tokens at once.

Who a request acts as is decided here and only here, from facts about the stored user, session and token,
however they were fetched: :func:`session_access` (a login session: unrevoked, unexpired, an active user,
their role's scopes) and :func:`token_access` (a bearer token: unrevoked, unexpired, its user active, its
scopes within the role, whether its use is due to be recorded); :func:`session_refusal` and
:func:`token_refusal` say why one is refused. The general path (``tickets/api/deps.py``,
``tickets/ui/web.py``) loads the rows with the ORM; the event loop's cache-hit lookups
(``tickets/hot_reads.py``) fetch the same facts in one statement and hand them to the same functions.

Logins are throttled per user name and per client address (tickets/throttle.py): :func:`login_attempt`
refuses a locked name or address before looking at the password, and answers an unknown name exactly as a
wrong password, after verifying a dummy hash (no user enumeration, by answer or by time).
"""

# size: the one identity decision with the password, login, session and token rules it rests on

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
from core.i18n import Gettext
from tickets import security_log, sessions, throttle
from tickets.access_models import AuthSession
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


def disable_user(session: Session, username: str, *, actor: str = "cli") -> User:
    """Disable a user: no login, their sessions are revoked and none of their tokens work any more (the
    tokens stay listed)."""
    user = get_user(session, username)
    user.active = False
    session.flush()
    sessions.revoke_user_sessions(session, user, reason="user disabled", actor=actor, now=utcnow())
    log.info("user disabled", extra={"username": username})
    return user


def set_password(session: Session, user: User, password: str, *, actor: str = "cli") -> None:
    """A new password; every login session of the user is revoked (their tokens are not: rotate those)."""
    _check_password(password)
    user.password_hash = hash_password(password)
    session.flush()
    sessions.revoke_user_sessions(session, user, reason="password changed", actor=actor, now=utcnow())


def set_role(session: Session, username: str, role: str, *, actor: str = "cli") -> User:
    """A new role; every login session of the user is revoked (their tokens narrow to the role at once)."""
    check_role(role)
    user = get_user(session, username)
    old, user.role = user.role, role
    session.flush()
    sessions.revoke_user_sessions(session, user, reason="role changed", actor=actor, now=utcnow())
    log.info("user role changed", extra={"username": username, "role": role, "previous_role": old})
    return user


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The answer to a login attempt: the user, or why not (the same words for a wrong password and an
    unknown name)."""

    user: User | None
    locked_until: datetime | None = None

    def message(self, now: datetime, gettext: Gettext | None = None) -> str:
        """Why the login failed, in ``gettext``'s language (English without it)."""
        _ = gettext or str
        if self.user is not None:
            return ""
        if self.locked_until is not None:
            wait = max(1, int((self.locked_until - now).total_seconds() + 0.999))
            return _("Too many failed logins: try again in %(seconds)d s.") % {"seconds": wait}
        return _("Wrong username or password.")


def login_attempt(
    session: Session,
    username: str,
    password: str,
    *,
    address: str | None = None,
    rules: throttle.ThrottleRules = throttle.DEFAULT_RULES,
    now: datetime | None = None,
) -> LoginResult:
    """A login: refused at once while the name or the address is locked; else the active user with this
    name and password, or a refusal (counted: enough of them lock the name and the address).

    An unknown name costs the same argon2 verification as a wrong password and gets the same answer. A
    successful login upgrades a legacy (scrypt) or weaker hash to today's argon2 parameters. The caller
    commits whatever the outcome (the failure counts are rows of the store)."""
    at = now or utcnow()
    lock = throttle.locked_until(session, username, address, at)
    if lock is not None:
        log.warning("login refused: locked", extra={"username": username[:64], "address": address})
        return LoginResult(None, lock)
    user = session.scalars(select(User).where(User.username == username)).first()
    good = verify_password(password, _dummy() if user is None else user.password_hash)
    if user is None or not good or not user.active:
        lock = throttle.record_failure(session, username, address, at, rules)
        log.info("login failed", extra={"username": username[:64], "address": address})
        return LoginResult(None, lock)
    throttle.forget_user(session, username)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
        log.info("password hash upgraded to argon2", extra={"username": username})
    return LoginResult(user)


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    address: str | None = None,
    rules: throttle.ThrottleRules = throttle.DEFAULT_RULES,
) -> User | None:
    """The user of a successful :func:`login_attempt`, else None (locked, wrong or unknown alike)."""
    return login_attempt(session, username, password, address=address, rules=rules).user


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


DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
"""A token's lifetime unless told otherwise (settings: ``security.token_default_days``)."""


def create_token(
    session: Session,
    user: User,
    name: str,
    scopes: Iterable[str] | None = None,
    *,
    expires: timedelta | None = DEFAULT_TOKEN_LIFETIME,
    now: datetime | None = None,
) -> str:
    """A new API token for the user; the plaintext is returned once and never stored.

    ``scopes`` default to everything the user's role allows; asking for more than the role allows, or an
    unknown scope, is a ValueError naming it. ``expires``: its lifetime (None: never, refused for a token
    with the ``admin`` scope)."""
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
    if expires is None and "admin" in chosen:
        raise ValueError("a token with the 'admin' scope must expire: give --expires (e.g. 30d)")
    if expires is not None and expires <= timedelta(0):
        raise ValueError("a token's lifetime must be positive")
    created = now or utcnow()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name.strip(),
            token_hash=token_hash(token),
            prefix=token[:12],
            scopes=" ".join(chosen),
            created_at=created,
            expires_at=None if expires is None else created + expires,
        )
    )
    session.flush()
    log.info(
        "api token created",
        extra={
            "username": user.username,
            "token_name": name,
            "prefix": token[:12],
            "scopes": chosen,
            "expires_s": None if expires is None else int(expires.total_seconds()),
        },
    )
    return token


_DURATION = re.compile(r"^(\d{1,5})([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_lifetime(text: str) -> timedelta | None:
    """``90d``, ``12h``, ``2w`` as a timedelta; ``never`` as None; anything else a ValueError."""
    text = text.strip().lower()
    if text == "never":
        return None
    found = _DURATION.fullmatch(text)
    if found is None or int(found[1]) == 0:
        raise ValueError(f"--expires {text!r}: give a duration such as 90d, 12h or 2w, or 'never'")
    return int(found[1]) * _UNITS[found[2]]


def rotate_token(session: Session, ref: int | str, *, actor: str = "cli") -> tuple[ApiToken, str]:
    """A new secret for a token (same user, name and scopes, and the same lifetime from now: its old one,
    or the default for a token that never expired and may not do so any more); the old one is revoked at
    once. Returns the new row and its plaintext (shown once)."""
    old = find_token(session, str(ref))
    if old.revoked_at is not None:
        raise ValueError(f"token {old.id} ({old.prefix}...) is revoked: create a new one")
    lifetime = None if old.expires_at is None else old.expires_at - old.created_at
    now = utcnow()
    scopes = sorted(token_scopes(old))
    token = create_token(session, old.user, old.name, scopes, expires=lifetime, now=now)
    new = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).one()
    old.revoked_at = now
    session.flush()
    security_log.record(
        session,
        actor=actor,
        action="token_rotated",
        subject=old.user.username,
        detail={"old_token": old.id, "old_prefix": old.prefix, "new_token": new.id, "new_prefix": new.prefix},
        now=now,
    )
    return new, token


LAST_USED_RESOLUTION = timedelta(minutes=1)
"""How finely a token's last use is recorded."""


# --- who a request acts as: the one decision ----------------------------------------------------------

MAX_TOKEN_LENGTH = 256


def plausible_token(token: str) -> bool:
    """Whether a presented bearer token could be one of ours (else it is refused without a lookup)."""
    return token.startswith(TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH


def seen_due(last: datetime | None, now: datetime) -> bool:
    """Whether a session's or token's use is due to be recorded (to the minute: one hot row per client
    would otherwise be written on every request, each queued on its lock and a commit flush)."""
    return last is None or now - last >= LAST_USED_RESOLUTION


def session_refusal(
    *, active: bool, revoked_at: datetime | None, expires_at: datetime | None, now: datetime | None
) -> str | None:
    """Why a login session is refused (revoked, expired, its user disabled), else None."""
    if revoked_at is not None:
        return "the session has ended (logged out or revoked)"
    if expires_at is not None and now is not None and now >= expires_at:
        return "the session has expired"
    if not active:
        return "the user is disabled"
    return None


def session_access(
    *,
    active: bool,
    role: str,
    revoked_at: datetime | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> frozenset[str] | None:
    """What the user of a login session may do: their role's scopes; None for a revoked or expired session
    or a disabled user."""
    if session_refusal(active=active, revoked_at=revoked_at, expires_at=expires_at, now=now) is not None:
        return None
    return scopes_within(role, None)


def user_for_session(session: Session, session_id: str | None, *, now: datetime | None = None) -> User | None:
    """The user of a login session (the general path), if :func:`session_access` lets them in; its last
    request is recorded once a minute."""
    if session_id is None:
        return None
    row = session.scalars(
        select(AuthSession).where(AuthSession.token_hash == sessions.session_hash(session_id))
    ).first()
    if row is None:
        return None
    at = now or utcnow()
    scopes = session_access(
        active=row.user.active,
        role=row.user.role,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
        now=at,
    )
    if scopes is None:
        return None
    if seen_due(row.last_seen_at, at):
        row.last_seen_at = at
        session.flush()
    return row.user


@dataclass(frozen=True, slots=True)
class TokenAccess:
    scopes: frozenset[str]
    """The token's scopes within its user's role."""
    record_use: bool
    """Its last use is due to be recorded (to the minute: :data:`LAST_USED_RESOLUTION`)."""


def token_refusal(
    *, revoked_at: datetime | None, active: bool, expires_at: datetime | None, now: datetime
) -> str | None:
    """Why a stored token is refused (revoked, expired, its user disabled), else None."""
    if revoked_at is not None:
        return "the token has been revoked"
    if expires_at is not None and now >= expires_at:
        return f"the token expired at {expires_at:%Y-%m-%d %H:%M} UTC: rotate it (hypercare tokens rotate)"
    if not active:
        return "the token's user is disabled"
    return None


def token_access(
    *,
    revoked_at: datetime | None,
    active: bool,
    role: str,
    scopes: str | None,
    last_used_at: datetime | None,
    now: datetime,
    expires_at: datetime | None = None,
) -> TokenAccess | None:
    """What a stored token may do now; None for a revoked or expired token or one whose user is disabled."""
    if token_refusal(revoked_at=revoked_at, active=active, expires_at=expires_at, now=now) is not None:
        return None
    return TokenAccess(scopes_within(role, scopes), record_use=seen_due(last_used_at, now))


UNKNOWN_TOKEN = "invalid token"  # noqa: S105 - the answer to an unknown token, not a secret


def check_token(session: Session, token: str, *, now: Callable[[], datetime] = utcnow) -> Principal | str:
    """The principal of this token (its last use is recorded), else why it is refused."""
    if not plausible_token(token):
        return UNKNOWN_TOKEN
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None:
        return UNKNOWN_TOKEN
    used = now()
    refused = token_refusal(
        revoked_at=row.revoked_at, active=row.user.active, expires_at=row.expires_at, now=used
    )
    access = token_access(
        revoked_at=row.revoked_at,
        active=row.user.active,
        role=row.user.role,
        scopes=row.scopes,
        last_used_at=row.last_used_at,
        now=used,
        expires_at=row.expires_at,
    )
    if access is None:
        return refused or UNKNOWN_TOKEN
    if access.record_use:
        row.last_used_at = used
        session.flush()
    return Principal(row.user, access.scopes, row.id)


def principal_for_token(
    session: Session, token: str, *, now: Callable[[], datetime] = utcnow
) -> Principal | None:
    """The active user owning this unrevoked, unexpired token with its scopes (its last use is recorded),
    else None."""
    found = check_token(session, token, now=now)
    return found if isinstance(found, Principal) else None


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

"""Users, passwords and API tokens.

Passwords are hashed with scrypt (salted, memory-hard; stdlib ``hashlib.scrypt``) and checked in constant
time. API tokens are random, shown once; only their SHA-256 and a short prefix (to recognise them in a
list) are stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hypercare.db import utcnow
from tickets.models import ROLES, ApiToken, User

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
TOKEN_PREFIX = "hc_"  # noqa: S105 - the public prefix of every token, not a secret
# scrypt cost: N=2**14, r=8, p=1 is the interactive-login setting (16 MiB, ~50 ms); kept in each hash so it
# can be raised later without invalidating stored passwords.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 64
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64 salt and hash)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN, maxmem=_MAXMEM
    )
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against :func:`hash_password`'s output; False if malformed."""
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


def create_user(session: Session, username: str, password: str, role: str, display_name: str = "") -> User:
    """Add a user. Raises ValueError with the reason on a bad name or role, a taken name, a short password."""
    if not USERNAME_RE.fullmatch(username):
        raise ValueError(
            f"username {username!r} is not valid: 1-64 letters, digits or . _ @ -, starting with a letter "
            "or digit"
        )
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
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


def set_password(session: Session, user: User, password: str) -> None:
    _check_password(password)
    user.password_hash = hash_password(password)
    session.flush()


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (in about the same time either way)."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        verify_password(password, _dummy())
        return None
    if not verify_password(password, user.password_hash) or not user.active:
        return None
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, user: User, name: str) -> str:
    """A new API token for the user. The plaintext is returned once and never stored."""
    if not name.strip() or len(name) > 64:
        raise ValueError("a token needs a name of 1-64 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name.strip(),
            token_hash=_token_hash(token),
            prefix=token[:12],
            created_at=utcnow(),
        )
    )
    session.flush()
    log.info("api token created", extra={"username": user.username, "token_name": name, "prefix": token[:12]})
    return token


def user_for_token(session: Session, token: str, *, now: Callable[[], datetime] = utcnow) -> User | None:
    """The active user owning this unrevoked token (and its last use is recorded), else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 256:
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(token))).first()
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    row.last_used_at = now()
    session.flush()
    return row.user


def revoke_token(session: Session, token_id: int) -> None:
    """Revoke a token by id (from a listing); revoking twice is harmless."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise ValueError(f"no API token with id {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()

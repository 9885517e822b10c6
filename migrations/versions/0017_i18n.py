"""i18n: each user's language and time zone

``app_user.language`` is the UI language the user chose (``en``, ``zh_CN``, ``zh_TW``) and
``app_user.timezone`` the IANA zone times are shown in (``Asia/Shanghai``). Both are NULL for every user
until they choose: NULL language means the browser's ``Accept-Language``, else the site's
``site.language``; NULL time zone means the site's.

Revision ID: 0017_i18n
Revises: 0016_mgmt
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_i18n"
down_revision: str | None = "0016_mgmt"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("timezone")
        batch.drop_column("language")

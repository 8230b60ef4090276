"""Consent scope (which doors or uses a consent covers) and when a person was last recognised.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from facegate.gallery.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent_records") as batch:
        batch.add_column(sa.Column("scope", sa.Text(), nullable=False, server_default='["*"]'))
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("last_seen_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("consent_records") as batch:
        batch.drop_column("scope")

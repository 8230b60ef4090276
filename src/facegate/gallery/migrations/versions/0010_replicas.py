"""Replicas and leases: several `serve` processes on one database, each camera run by one;
snapshot files an erasure left on another replica's disk.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from facegate.gallery.schema import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_replicas_seen_at", "replicas", ["seen_at"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(120), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("epoch", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_leases_holder", "leases", ["holder"])
    op.create_table(
        "snapshot_wipes",
        sa.Column("rel", sa.String(200), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_snapshot_wipes_at", "snapshot_wipes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_snapshot_wipes_at", "snapshot_wipes")
    op.drop_table("snapshot_wipes")
    op.drop_index("ix_leases_holder", "leases")
    op.drop_table("leases")
    op.drop_index("ix_replicas_seen_at", "replicas")
    op.drop_table("replicas")

"""Event subjects: the enrolled people an event shows without naming them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_subjects",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "person_id", sa.String(36), sa.ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_event_subjects_person_id", "event_subjects", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_event_subjects_person_id", "event_subjects")
    op.drop_table("event_subjects")

"""transparency log: entries, subtree hashes, the lock row, signed tree heads

Existing versions, tags and trusted keys are appended (oldest first, marked
``"backfill": true``) so that every published version has a publish entry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_entries",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=400), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.create_index("ix_log_entries_leaf_hash", ["leaf_hash"], unique=False)
        batch_op.create_index("ix_log_entries_kind_subject", ["kind", "subject"], unique=False)
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    log_state = op.create_table(
        "log_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "log_tree_heads",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "tree_size"),
    )
    op.bulk_insert(log_state, [{"id": 1, "size": 0}])
    _backfill()


def _backfill() -> None:
    """Log what the registry already holds, so the log covers every existing version."""
    from sqlalchemy.orm import Session

    from modelseal.registry.transparency_store import backfill

    session = Session(bind=op.get_bind())
    backfill(session)
    session.flush()


def downgrade() -> None:
    op.drop_table("log_tree_heads")
    op.drop_table("log_state")
    op.drop_table("log_nodes")
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_log_entries_kind_subject")
        batch_op.drop_index("ix_log_entries_leaf_hash")
    op.drop_table("log_entries")

"""registry v2: token lineage, blobs sent by an upload, the signature-bundle replay key

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_tokens_parent_id", ["parent_id"], unique=False)
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bundle_id", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_versions_bundle_id", ["bundle_id"], unique=False)
    op.create_table(
        "upload_blobs",
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["upload_id"], ["uploads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("upload_id", "digest"),
    )


def downgrade() -> None:
    op.drop_table("upload_blobs")
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.drop_index("ix_versions_bundle_id")
        batch_op.drop_column("bundle_id")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_tokens_parent_id")
        batch_op.drop_column("parent_id")

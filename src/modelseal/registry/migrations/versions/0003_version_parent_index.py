"""index versions.parent: the lineage view looks up the versions derived from one

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 07:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_versions_parent", "versions", ["parent"])


def downgrade() -> None:
    op.drop_index("ix_versions_parent", table_name="versions")

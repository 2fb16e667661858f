"""Notes remember their room (a column added to a table with rows: SQLite batch mode).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("notes_note") as batch:
        batch.add_column(sa.Column("room_id", sa.Text(), server_default="", nullable=False))
    op.create_index("ix_notes_note_network_room_id", "notes_note", ["network", "room_id"])


def downgrade() -> None:
    op.drop_index("ix_notes_note_network_room_id", table_name="notes_note")
    with op.batch_alter_table("notes_note") as batch:
        batch.drop_column("room_id")

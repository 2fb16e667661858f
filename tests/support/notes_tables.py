"""Tables of a test connector's own (``ConnectorTables``): notes, in two migrations."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Index, Integer, MetaData, Table, Text, func, insert, select, text

from bridgekit import ConnectorDatabase, ConnectorTables

metadata = MetaData()

note = Table(
    "notes_note",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("network", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("room_id", Text, nullable=False, server_default=text("''")),
    Index("ix_notes_note_network_room_id", "network", "room_id"),
)

NOTES_TABLES = ConnectorTables(
    schema="notes", migrations=Path(__file__).with_name("notes_migrations"), metadata=metadata
)


async def add_note(database: ConnectorDatabase, network: str, room_id: str, body: str) -> int:
    """Store a note; how many notes the room has now."""
    async with database.write() as connection:
        await connection.execute(insert(note).values(network=network, room_id=room_id, text=body))
        count = select(func.count()).select_from(note).where(note.c.network == network, note.c.room_id == room_id)
        return int((await connection.execute(count)).scalar_one())

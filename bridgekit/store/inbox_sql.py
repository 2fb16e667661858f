"""The inbox's hot-path SQL, run on the drivers themselves (``store/inbox.py``): sqlite3's ``?``
and asyncpg's ``$n`` placeholders, one statement per step of storing a transaction.

Written out in full (no string building): the only values are bound parameters.
"""

SQLITE_SEEN_TXN = "SELECT fingerprint FROM as_txn WHERE txn_id = ?"
SQLITE_INSERT_TXN = "INSERT INTO as_txn (txn_id, fingerprint, received_at, event_count) VALUES (?, ?, ?, ?)"
SQLITE_INSERT_ROWS = (
    "INSERT INTO inbox_event (txn_id, seq, event_id, room_id, kind, queue_key, payload, state, "
    "last_error, received_at, handled_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) "
    "ON CONFLICT (event_id) DO NOTHING"
)
SQLITE_ADVANCE_CURSOR = (
    "INSERT INTO inbox_cursor (queue_key, done_through) VALUES (?, ?) ON CONFLICT (queue_key) "
    "DO UPDATE SET done_through = max(done_through, excluded.done_through)"
)
POSTGRESQL_SEEN_TXN = "SELECT fingerprint FROM as_txn WHERE txn_id = $1"
POSTGRESQL_INSERT_TXN = (
    "INSERT INTO as_txn (txn_id, fingerprint, received_at, event_count) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
POSTGRESQL_INSERT_ROWS = (
    "INSERT INTO inbox_event (txn_id, seq, event_id, room_id, kind, queue_key, payload, state, "
    "last_error, received_at, handled_at, attempts) "
    "SELECT *, 0 FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], "
    "$6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[]) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING seq, id"
)
POSTGRESQL_ADVANCE_CURSOR = (
    "INSERT INTO inbox_cursor (queue_key, done_through) VALUES ($1, $2) "
    "ON CONFLICT (queue_key) DO UPDATE SET "
    "done_through = greatest(inbox_cursor.done_through, excluded.done_through)"
)

__all__ = [
    "POSTGRESQL_ADVANCE_CURSOR",
    "POSTGRESQL_INSERT_ROWS",
    "POSTGRESQL_INSERT_TXN",
    "POSTGRESQL_SEEN_TXN",
    "SQLITE_ADVANCE_CURSOR",
    "SQLITE_INSERT_ROWS",
    "SQLITE_INSERT_TXN",
    "SQLITE_SEEN_TXN",
]

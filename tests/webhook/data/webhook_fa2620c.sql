-- The webhook database's schema as the code of commit fa2620c made it (WebhookStore.open's
-- create_all on SQLite), dumped from sqlite_master. tests/webhook/test_store_migration.py
-- upgrades a database built from it.

CREATE TABLE webhook_hook (
	id VARCHAR(32) NOT NULL,
	room_id VARCHAR(255) NOT NULL,
	name VARCHAR(100) NOT NULL,
	creator VARCHAR(255) NOT NULL,
	scheme VARCHAR(16) NOT NULL,
	token_hash VARCHAR(64),
	sealed_secret TEXT,
	identity VARCHAR(16) NOT NULL,
	created_ms BIGINT NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_webhook_hook_room_id ON webhook_hook (room_id);
CREATE TABLE webhook_inbound (
	id INTEGER NOT NULL,
	hook_id VARCHAR(32) NOT NULL,
	idempotency_key VARCHAR(255),
	room_id VARCHAR(255) NOT NULL,
	message JSON NOT NULL,
	state VARCHAR(16) NOT NULL,
	event_id VARCHAR(255),
	attempts INTEGER NOT NULL,
	created_ms BIGINT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (hook_id, idempotency_key)
);
CREATE INDEX ix_webhook_inbound_hook_id ON webhook_inbound (hook_id);
CREATE INDEX ix_webhook_inbound_created_ms ON webhook_inbound (created_ms);
CREATE INDEX ix_webhook_inbound_state ON webhook_inbound (state);
CREATE TABLE webhook_ghost (
	hook_id VARCHAR(32) NOT NULL,
	name_key VARCHAR(64) NOT NULL,
	user_id VARCHAR(255) NOT NULL,
	displayname VARCHAR(255),
	avatar_source TEXT,
	PRIMARY KEY (hook_id, name_key)
);
CREATE TABLE webhook_outbound (
	id VARCHAR(32) NOT NULL,
	room_id VARCHAR(255) NOT NULL,
	url TEXT NOT NULL,
	sealed_secret TEXT NOT NULL,
	creator VARCHAR(255) NOT NULL,
	created_ms BIGINT NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_webhook_outbound_room_id ON webhook_outbound (room_id);
CREATE TABLE webhook_delivery (
	id VARCHAR(64) NOT NULL,
	hook_id VARCHAR(32) NOT NULL,
	event_id VARCHAR(255) NOT NULL,
	room_id VARCHAR(255) NOT NULL,
	body TEXT NOT NULL,
	state VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt_ms BIGINT NOT NULL,
	last_error TEXT,
	PRIMARY KEY (id),
	UNIQUE (hook_id, event_id)
);
CREATE INDEX ix_webhook_delivery_state ON webhook_delivery (state);
CREATE INDEX ix_webhook_delivery_next_attempt_ms ON webhook_delivery (next_attempt_ms);
CREATE INDEX ix_webhook_delivery_hook_id ON webhook_delivery (hook_id);
CREATE TABLE webhook_private_room (
	user_id VARCHAR(255) NOT NULL,
	room_id VARCHAR(255) NOT NULL,
	PRIMARY KEY (user_id)
);

"""The webhook bridge: inbound hooks post into Matrix rooms, outbound hooks receive rooms' messages."""

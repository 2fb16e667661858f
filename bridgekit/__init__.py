"""bridgekit: a framework for Matrix application-service bridges."""

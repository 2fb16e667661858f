"""Real servers the tests start and stop: Synapse, the bridge under test, fault proxies."""

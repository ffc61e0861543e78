"""The engine: experiment state, events, the bus, trial proxies and the controller."""

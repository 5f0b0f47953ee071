"""The run core: engine, attempts, scheduling, retry policy, the cache plan, costs and events."""

"""Alerts: the pure alert policy, the WebSocket protocol and server, and the agent's nudge page."""

"""The gateway: the one public entry point (SPEC §7): tokens, rate limits, routing, composed views, web pages."""

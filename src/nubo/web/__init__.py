"""The HTTP side of nubo: the portal, its JSON API and the health check."""

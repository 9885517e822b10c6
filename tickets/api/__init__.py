"""The HTTP API of the ticket queue (routers, dependencies, schemas); ``tickets.app.create_app`` mounts it
with the web UI, health and metrics."""

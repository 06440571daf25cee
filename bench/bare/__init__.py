"""A bare Django + DRF project, outside the site, that the I/O-bound section compares the echo run against.

Its own minimal settings: two middleware, no authentication, one APIView doing one SQL query on a
SQLite file of its own; served by gunicorn with the same uvicorn worker class and worker count as
the site (bench/bare/server.py). It answers what Django itself can do on this machine.
"""

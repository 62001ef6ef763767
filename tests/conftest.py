from pg_server import pg_blank_url, pg_cluster, pg_server, pg_url  # noqa: F401

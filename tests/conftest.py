import os

# python-axolotl's generated protobuf code runs only on protobuf's pure-Python
# implementation; choose it before any test module loads protobuf (child
# processes inherit it).
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

from pg_server import pg_blank_url, pg_cluster, pg_server, pg_url  # noqa: F401

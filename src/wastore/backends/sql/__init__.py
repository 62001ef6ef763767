"""The one SQL backend, over an engine per dialect (``backends/sqlite``, ``backends/postgres``).

- ``engine``: the seam, the few primitives a dialect provides;
- ``store``: :class:`~wastore.backends.sql.store.SqlStore`, the container;
- ``account``: :class:`~wastore.backends.sql.account.SqlAccount`, the whole
  per-account :class:`~wastore.Backend`, with its methods by domain in
  ``account_signal``, ``account_appsync`` and ``account_protocol``, over
  ``account_base`` (fenced writes, checksummed reads);
- ``queries``, ``schema``, ``migrate``: the statements, the schema and its
  migrations, written once for both dialects;
- ``codec``, ``checksum``, ``dump``: rows <-> values, row checksums, export and
  import of one account;
- ``leases``, ``fence``: account leases with epochs, and the fenced writes.
"""

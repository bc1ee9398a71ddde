"""The sans-IO protocol core: AS4 (MIME, ebMS 3, WS-Security, receipts), the Peppol AS4 profile and the SBDH.

Bytes (or an iterable of byte chunks) in, values out; values in, bytes out. No Flask, SQLAlchemy, requests,
sockets or clock: an explicit `now` is passed where time matters.
"""

"""Discovery: identifiers, SML lookup, SMP client and server (may import certs, never accesspoint)."""

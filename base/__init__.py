"""Helpers with no knowledge of Peppol, shared by `certs`, `smp` and the AS4 core: safe XML, bounded reads."""

"""Trust: key material, Peppol trust anchors, certificate validation and revocation (imports nothing of ours)."""

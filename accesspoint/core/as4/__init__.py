"""Generic ebMS 3 / AS4 without I/O: MIME, eb:Messaging, WS-Security, XML Encryption, receipts and errors.

The Peppol AS4 profile builds on this in `accesspoint.core.peppol`; code outside the core uses the recipes of
`accesspoint.core`, not these modules.
"""

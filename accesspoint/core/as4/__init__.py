"""AS4 protocol core without I/O: MIME, eb:Messaging, WS-Security, receipts and errors."""

"""One module per flow, each with one top-level function: receive, submit, send, deliver, register, import, maintain."""

"""The I/O towards the outside: HTTP transport, discovery wiring, blob stores, the SMP's participant source."""

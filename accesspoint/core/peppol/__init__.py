"""The Peppol AS4 profile over the generic ebMS 3 core: its header rules, the inbound step list, building and
opening Peppol messages, and `inspect`."""

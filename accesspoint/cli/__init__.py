"""The `peppol-ap` command line."""

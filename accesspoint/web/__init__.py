"""The web edge: blueprints for AS4, the network API, the admin API and the SMP."""

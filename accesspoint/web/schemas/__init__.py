"""The request and response models of the network API and the admin API: they validate the requests, serialise
the answers and are the schemas of the OpenAPI documents (accesspoint.web.apidoc)."""

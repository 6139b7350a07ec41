"""The carrier's systems over HTTP (settings ``backend: http``): the client with its cache and breaker,
the contract (carrier_api.openapi.yaml), and the operations and messaging source answered from them."""

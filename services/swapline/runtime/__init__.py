"""The runtime every swapline gRPC server shares: configuration, metrics,
interceptors, health, reflection and graceful shutdown."""

"""The runtime every swapline gRPC server shares: bootstrap, health,
reflection, metrics, the interceptor that maps errors to status codes,
graceful shutdown, storage roots, and launching servers as processes."""

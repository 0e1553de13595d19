"""gRPC adapters: each module turns one stage library into one service."""

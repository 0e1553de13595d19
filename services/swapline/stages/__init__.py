"""Stage logic as plain library code: no gRPC, no I/O beyond what each stage needs."""

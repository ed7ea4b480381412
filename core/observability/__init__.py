"""What an operator sees: the Prometheus registry and the id that follows one question through the logs."""

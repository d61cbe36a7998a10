"""Looking at the running service from outside: metrics, health, the HTTP endpoint."""

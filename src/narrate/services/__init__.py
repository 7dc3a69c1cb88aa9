"""Application services: one module per concern; they own transactions and orchestration."""

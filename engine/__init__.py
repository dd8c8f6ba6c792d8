"""The trading engine: collaborators that turn market views and order events into durable bookkeeping."""

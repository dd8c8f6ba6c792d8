"""The domain core: records, enums, ports, order groups, the state machine. Imports nothing of the project."""

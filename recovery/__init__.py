"""What runs on start: incomplete order groups and reconciliation, as pure decisions."""

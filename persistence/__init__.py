"""Everything that touches the ObjectStore: keys, codec, envelopes, records, the state store."""

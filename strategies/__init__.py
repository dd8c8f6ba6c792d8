"""State machines and trading rules (LT112, 0DTE); no LEAN imports here."""

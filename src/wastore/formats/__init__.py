"""Foreign account formats (provisional package marker; the import API lives here)."""

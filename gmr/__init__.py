"""gmr: Guru Meditation Reports for Python services."""

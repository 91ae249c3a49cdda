"""aiwatch."""

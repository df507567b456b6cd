"""Rendering: rich tables and JSON/CSV/Markdown exports from records. Nothing here computes a number."""

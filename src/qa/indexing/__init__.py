"""Indexing: articles chunked into passages, embedded where no vector is stored yet, and written to a back end."""

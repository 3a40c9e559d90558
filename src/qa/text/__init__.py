"""Text primitives shared by every stage: sentence boundaries, query words, Unicode checks."""

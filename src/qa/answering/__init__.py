"""Answering: sentences of the retrieved passages scored as support, then the answer composed and cited."""

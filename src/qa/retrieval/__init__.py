"""Retrieval: a back end's dense and lexical rankings of passages, fused into one."""

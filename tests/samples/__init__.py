"""Builders that write test samples (benign and malicious) into a directory.

One module per family; every malicious payload is harmless (``print``, ``true``).
"""

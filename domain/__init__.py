"""The domain layer: plain Python, standard library only.

Kernel modules sit at this level (``aggregate``, ``errors``, ``messages``,
``text``); each bounded context's domain is a sub-package named after it.
"""

"""The service layer: the ports, and use cases that each run in a unit of work.

Kernel modules sit at this level (``unit_of_work``, ``repository``,
``messagebus``, ``retry``); each bounded context's use cases are a
sub-package named after it. Nothing here imports ``adapters`` or ``entrypoints``.
"""

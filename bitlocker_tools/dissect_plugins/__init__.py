"""The folder the dissect tools load as a plugin path (``--plugin-path``, ``DISSECT_PLUGINS``).

dissect.target runs every ``.py`` file under a plugin path except ``__init__.py``; the one module
here makes it open BitLocker volumes with bitlocker-tools (see :mod:`bitlocker_tools.dissect_target`).
"""

"""BitLocker's on-disk structures (construct definitions) and codes, and nothing else.

One module per structure family: :mod:`.boot_sector`, :mod:`.metadata`, :mod:`.eow`,
:mod:`.keyfiles`, :mod:`.fat`; the shared field types in :mod:`.types` and the codes and sizes in
:mod:`.constants`. The reader and the forge both build on these definitions, so a field has one
name and one offset everywhere. Parsing logic lives outside this package.
"""

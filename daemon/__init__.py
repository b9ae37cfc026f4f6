"""callwatch's I/O edge: config, capture, device recovery, metrics, the CLI, systemd notify.

Note: ``daemon`` is also the import name of the unrelated python-daemon library; callwatch
installs into its own virtual environment and a test checks that this is the module loaded.
"""

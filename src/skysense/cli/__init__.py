"""The ``skysense`` command line.

Each area contributes one module here (``skysense/cli/<area>.py``) that defines
``register(subparsers)``; :mod:`skysense.cli.__main__` discovers them, so an area's command
exists exactly when its module does. Area modules only parse arguments and call the Python API.
"""

__all__: list[str] = []

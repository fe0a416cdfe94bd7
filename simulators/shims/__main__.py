"""``python -m simulators.shims`` prints the directory to put on sys.path / PYTHONPATH."""

from . import PATH_ENTRY

print(PATH_ENTRY)

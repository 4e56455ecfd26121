# The golden files are generated modules to read and diff, not tests; tests/test_golden.py checks them.
collect_ignore_glob = ["*.py"]

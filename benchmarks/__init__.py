"""Speed and memory benchmarks that print figures; each file runs as `python benchmarks/NAME.py`."""

"""Questions from every door: accepted, answered once, delivered once, recovered (see lifecycle.py)."""

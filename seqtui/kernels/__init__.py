"""Numba @njit kernels: pure functions over arrays (no I/O, no imports from the rest of seqtui)."""

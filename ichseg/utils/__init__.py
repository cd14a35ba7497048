"""Small shared helpers with no study logic (atomic writes, hashing, the method a record names)."""

from .atomic import atomic_directory, atomic_write_bytes, atomic_write_json, atomic_write_text
from .hashing import config_hash, file_sha256
from .records import method_of, methods_of

__all__ = [
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "config_hash",
    "file_sha256",
    "method_of",
    "methods_of",
]

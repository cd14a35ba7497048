"""ichseg — a reproducible study of diffusion-based ICH segmentation in head CT.

Layers are one-way: ``ichseg.data``, ``ichseg.diffusion``, ``ichseg.models`` and
``ichseg.metrics`` know nothing of the engine (train / evaluate / predict), which knows nothing
of the study driver and the report.
"""

__version__ = "0.1.0"

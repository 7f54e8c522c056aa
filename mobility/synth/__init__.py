"""The generator: a synthetic France of job seekers and offers in the real input formats.

``generate`` reads the ``ref.*`` tables once, builds a numpy model calibrated on them (``model``), simulates
seekers chunk by chunk (``simulate``), writes the FHS-like CSV files and the job-offers API pages
(``render``), optionally with realistic defects (``defects``), and writes the ground truth beside the data.
"""

from mobility.synth.core import generate, generate_from_reference, read_reference
from mobility.synth.params import SynthParams

__all__ = ["SynthParams", "generate", "generate_from_reference", "read_reference"]

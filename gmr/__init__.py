"""gmr: Guru Meditation Reports for Python services, a drop-in successor of
oslo.reports. See README.md."""

from gmr import opts
from gmr._impl import IMPLEMENTATION
from gmr.guru import TextGuruMeditation

#: oslo.reports' other name for the same class.
GuruMeditation = TextGuruMeditation


def rearm() -> None:
    """Re-arm gmr in this process: see TextGuruMeditation.rearm."""
    TextGuruMeditation.rearm()


__all__ = ["IMPLEMENTATION", "GuruMeditation", "TextGuruMeditation", "opts", "rearm"]

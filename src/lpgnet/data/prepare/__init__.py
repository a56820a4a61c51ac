"""``lpgnet prepare``: raw corpora -> the generic conversation format (see common.py)."""

from .common import Prepared
from .iemocap import prepare_iemocap
from .meld import prepare_meld
from .table import prepare_table

__all__ = ["Prepared", "prepare_iemocap", "prepare_meld", "prepare_table"]

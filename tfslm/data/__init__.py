"""Data stage: read tables (readers), clean rows (cleaning), label spaces (labels), validation splits (splits).

Example:
    >>> from tfslm.data import load_data, read_table, LabelSpace   # doctest: +SKIP
"""

from tfslm.data.cleaning import clean_text
from tfslm.data.labels import LabelSpace
from tfslm.data.loading import TextData, load_data, tokenize
from tfslm.data.readers import SUPPORTED_FORMATS, iter_table_batches, read_table, register_format
from tfslm.data.splits import stratified_split

__all__ = [
    "TextData", "load_data", "tokenize", "read_table", "iter_table_batches", "register_format", "SUPPORTED_FORMATS",
    "clean_text", "stratified_split", "LabelSpace",
]

"""Questions in other languages over English sources: query translation (Chinese) and user-facing messages.

Importing this package is cheap: jieba, OpenCC and CC-CEDICT load at the first Chinese question.

"""
from __future__ import annotations

from medrag.i18n.messages import MESSAGES, labels, message
from medrag.i18n.translation import (IDF, Translation, Translator, bm25_idf, detect_language, index_idf, to_simplified,
                                   translate)

__all__ = ["IDF", "MESSAGES", "Translation", "Translator", "bm25_idf", "detect_language", "index_idf", "labels",
           "message", "to_simplified", "translate"]

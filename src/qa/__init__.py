"""qa: ask questions about news articles; every answer cites the passage it came from.

>>> from qa import QA
>>> QA().ask("What does Nurly Zhol mean?").answer
"""

from __future__ import annotations

from qa.records import Answer, Article, Citation, Passage, SearchHit
from qa.service import QA
from qa.settings import Settings

__all__ = ["QA", "Answer", "Article", "Citation", "Passage", "SearchHit", "Settings"]

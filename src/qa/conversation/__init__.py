"""Follow-up questions: what the earlier turns of a conversation add to a question's search and its answer.

A client holds the thread and sends it with each question (the server stays stateless); `build_context`
reads it into a `ConversationContext` that retrieval and sentence scoring take as an optional argument.
"""

from __future__ import annotations

from qa.conversation.context import Anchor, ConversationContext, ConversationWeights, build_context
from qa.conversation.followup import search_text, stands_alone
from qa.conversation.thread import trimmed, turn_of

__all__ = [
    "Anchor",
    "ConversationContext",
    "ConversationWeights",
    "build_context",
    "search_text",
    "stands_alone",
    "trimmed",
    "turn_of",
]

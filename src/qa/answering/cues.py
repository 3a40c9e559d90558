"""Why and how: what asks for a reason or a manner, and what in a sentence gives one."""

from __future__ import annotations

import re

# Why/how questions: what asks for a reason or a manner, and what in a sentence gives one.
ASKS_WHY = re.compile(
    r"^\s*why\b|\bwhy (?:did|do|does|is|are|was|were|has|have|had|would|could|should|can|will)\b"
    r"|\bwhat (?:caused|causes|led to|leads to|made|prompted|drove|was behind)\b|\bfor what reason\b|\bhow come\b"
    r"|\b(?:the|what) reasons?\b",
    re.I,
)
ASKS_HOW = re.compile(
    r"^\s*how\b(?!\s+(?:many|much|large|big|long|old|far|high|tall|often|few|deep|wide|fast|early|late|soon"
    r"|heavy|small|short|low|hot|cold|strong|important|common)\b)|\bin what (?:way|manner)\b|\bby what means\b",
    re.I,
)
REASON_CUE = re.compile(
    r"\b(?:because|due to|owing to|as a result|result of|resulted from|caused by|cause of|causes of|led to"
    r"|leading to|thanks to|blamed|blaming|attributed to|after|since|so that|in order to|reason|reasons|amid"
    r"|following|therefore|hence|consequently|driven by|fuelled by|fueled by|hit by)\b",
    re.I,
)
# What news says instead of "because": the cause as the subject of a verb of effect ("bad weather has hit
# sales", "a strong franc dented sales", "a wet summer dampened demand"). Not a feature of the trained scorer
# (REASON_CUE is, as trained); it widens what counts as giving a reason when a why question's answer is led.
CAUSE_VERB = re.compile(
    r"\b(?:hit|hits|hurt|hurts|hurting|dent|dents|dented|denting|dampen|dampens|dampened|dampening"
    r"|(?:weigh|weighs|weighed|weighing) on|(?:drag|drags|dragged|dragging) (?:on|down)"
    r"|boost|boosts|boosted|boosting|spur|spurs|spurred"
    r"|spurring|spark|sparks|sparked|sparking|trigger|triggers|triggered|triggering|prompt|prompts|prompted"
    r"|prompting|drove|drives|driven|pushed|lifted|cause|causes|caused|causing|undermine|undermines|undermined"
    r"|undermining|eroded|squeezed|curbed|helped|held back|forced|damaged|suffered from|stemmed from)\b",
    re.I,
)
MANNER_CUE = re.compile(r"\bby\b|\bthrough\b|\busing\b|\bvia\b|\bwith the help of\b|\bby means of\b", re.I)


def asks_reason_or_manner(question: str) -> bool:
    """The question asks why (a reason) or how (a manner, not "how many")."""
    return bool(ASKS_WHY.search(question) or ASKS_HOW.search(question))


def gives_reason_or_manner(question: str, sentence: str) -> bool:
    """The sentence gives what the question asks for: a reason for a why (a cue such as "because", or a cause
    as the subject of a verb of effect), a manner for a how."""
    return bool(
        (ASKS_WHY.search(question) and (REASON_CUE.search(sentence) or CAUSE_VERB.search(sentence)))
        or (ASKS_HOW.search(question) and MANNER_CUE.search(sentence))
    )


# The same cues, case-sensitive, for lower-cased text: scanning every candidate sentence this way takes well
# under half the time of a case-insensitive scan (Python's re folds case at every position).
_REASON_LOWER = re.compile(REASON_CUE.pattern)
_MANNER_LOWER = re.compile(MANNER_CUE.pattern)
_NEGATION_LOWER = re.compile(r"\b(?:not|never|no|none|nor|neither|without|n't|cannot|failed to|refused to)\b|n't\b")


def reason_cue(lowered: str) -> bool:
    """A lower-cased sentence gives a reason: because, due to, after, as a result ..."""
    return _REASON_LOWER.search(lowered) is not None


def manner_cue(lowered: str) -> bool:
    """A lower-cased sentence gives a manner: by, through, using, via ..."""
    return _MANNER_LOWER.search(lowered) is not None


def negated(lowered: str) -> bool:
    """A lower-cased sentence (or question) is negated: not, never, no, without, n't ..."""
    return _NEGATION_LOWER.search(lowered) is not None

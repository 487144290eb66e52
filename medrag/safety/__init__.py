"""Safety checks around every answer: emergencies first, abstention on weak evidence, citation support,
no claims to be a clinician, and a notice when the question's script is one the embedder cannot read."""
from __future__ import annotations

from medrag.generation.citations import passage_sentences, split_answer
from medrag.safety.abstention import MARGIN_DEPTH, abstain, confidence
from medrag.safety.claims import remove_doctor_claims
from medrag.safety.emergencies import (CONCEPTS, CUES, EMERGENCY_NUMBER, EMERGENCY_NUMBER_ZH, MESSAGES, RULES,
                                       Emergency, detect_emergency, present_concepts)
from medrag.safety.language import MULTILINGUAL_EMBEDDERS, dominant_script, is_multilingual, language_notice
from medrag.safety.support import SUPPORT_THRESHOLD, SentenceSupport, SupportChecker

__all__ = ["CONCEPTS", "CUES", "EMERGENCY_NUMBER", "EMERGENCY_NUMBER_ZH", "MARGIN_DEPTH", "MESSAGES",
           "MULTILINGUAL_EMBEDDERS", "RULES", "SUPPORT_THRESHOLD", "Emergency", "SentenceSupport", "SupportChecker",
           "abstain", "confidence", "detect_emergency", "dominant_script", "is_multilingual", "language_notice",
           "passage_sentences", "present_concepts", "remove_doctor_claims", "split_answer"]

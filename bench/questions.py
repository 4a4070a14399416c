"""A pool of distinct, realistic questions about the synthetic manuals `_app.seed` indexes.

The load benchmark asks each chat a different question (chat n takes `pool[n % len]`), so
that no cache along the way (embedding, retrieval, the model server's prefix cache) makes
the figures look better than a busy help widget would see. Deterministic: the same pool
in every run, so runs stay comparable.
"""

from __future__ import annotations

import random

PARTS = ["pump", "valve", "sensor", "controller", "bearing", "filter", "motor", "gasket"]
WHERE = [
    "in the cellar unit",
    "on the rooftop model",
    "after a power cut",
    "on a new install",
    "in winter",
    "after the firmware update",
    "on the older housing",
    "at full load",
]
FORMS = [
    "How do I replace the {part} seal {where}?",
    "What torque do the {part} housing bolts need {where}?",
    "Why does the {part} light blink amber {where}?",
    "How often should I calibrate the {part} {where}?",
    "Can I clean the {part} filter with solvents {where}?",
    "What is the maximum operating temperature of the {part} {where}?",
    "Does the warranty cover a leaking {part} {where}?",
    "Where is the serial number plate on the {part} {where}?",
    "What should I check before opening the {part} housing {where}?",
    "How do I record the {part} offset in the log {where}?",
    "What does a red light on the {part} mean {where}?",
    "Which step comes after checking the {part} pressure {where}?",
]


def question_pool(size: int = 600) -> list[str]:
    """`size` distinct questions (at most len(FORMS) * len(PARTS) * len(WHERE) = 768),
    in a fixed shuffled order so that neighbours differ in part, form and place."""
    every = [
        form.format(part=part, where=where) for form in FORMS for part in PARTS for where in WHERE
    ]
    if size > len(every):
        raise ValueError(f"the pool holds {len(every)} distinct questions, not {size}")
    random.Random(16).shuffle(every)
    return every[:size]

"""Where the files shipped beside the package lie: the sample funnels and the builder's app."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
#: The sample funnels (the TechFlow funnel and the "Project work" funnel it starts).
SAMPLE_RULES = _ROOT / "sample_rules"
#: The Streamlit router ``conveyor builder`` serves.
BUILDER_APP = _ROOT / "builder" / "app.py"

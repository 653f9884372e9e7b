"""The rule-set document: its one model, its validation, its regular expressions and templates."""

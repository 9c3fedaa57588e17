"""The Textual app: screens, widgets, messages and the run state it watches (the only layer that imports Textual)."""

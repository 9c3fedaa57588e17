"""Reusable Textual widgets of the app (plots, panels, controls) and the run state they draw."""

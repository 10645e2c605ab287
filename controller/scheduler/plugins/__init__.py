"""Scheduler plugins: one rule per module, each with a NAME, its reasons and a pure
check; registry.py composes them into a profile."""

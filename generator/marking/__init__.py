"""Marking: answers parsed (never evaluated), keys read, partial credit, follow-through, named mistakes, reports."""

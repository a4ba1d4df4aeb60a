"""Tests for the worksheet generator."""

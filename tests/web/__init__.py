"""Tests of the web page (transformer-worksheets serve)."""

"""Test helpers: models, oracles, runners and fakes the test modules share (no tests here)."""

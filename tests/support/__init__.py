"""Test support code: builders of tiny models and other fixtures' raw material."""

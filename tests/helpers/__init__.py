"""Helpers shared by test modules (imported, never collected: no test_ names here)."""

"""Diary: growth diary posts, the likes and replies others leave, and the events they raise."""

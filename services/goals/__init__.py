"""Goals: a user's goals from daily to yearly, and the events their lifecycle raises."""

"""Stories: AI-written stories of a user's progress in a period, and what they draw on."""

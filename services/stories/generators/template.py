"""The embedded generator: a few plain-English paragraphs from the period's facts, the same
text for the same facts (lists are sorted, nothing random, no clock)."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.stories.generators import GoalFacts, StoryRequest
from services.stories.periods import Period

_PERIOD_WORDS = {"DAILY": "daily", "WEEKLY": "weekly", "MONTHLY": "monthly",
                 "QUARTERLY": "quarterly", "YEARLY": "yearly"}


def _day(moment: datetime | None) -> str:
    return moment.strftime("%-d %B %Y") if moment else "no set date"


def describe(period: Period) -> str:
    last = period.end - timedelta(days=1)
    if period.kind == "DAY":
        return _day(period.start)
    if period.kind == "WEEK":
        return f"the week of {_day(period.start)} to {_day(last)}"
    if period.kind == "MONTH":
        return period.start.strftime("%B %Y")
    if period.kind == "QUARTER":
        return f"Q{(period.start.month - 1) // 3 + 1} {period.start.year}"
    return str(period.start.year)


def _series(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _quoted(goal: GoalFacts) -> str:
    return f"\u201c{goal.title}\u201d"


def _by_title(goals: list[GoalFacts]) -> list[GoalFacts]:
    return sorted(goals, key=lambda g: (g.title, g.period))


class TemplateGenerator:
    def write(self, request: StoryRequest) -> str:
        span = describe(request.period)
        profile = request.profile
        who = profile.name or "You"
        paragraphs: list[str] = []
        role = ""
        if profile.current_role:
            role = f" as {profile.current_role}"
            if profile.industry:
                role += f" in {profile.industry}"
        if request.empty:
            paragraphs.append(
                f"{who}, {span} is still an open page. "
                "Nothing was completed, set or published in it yet, and that is fine: every "
                "story starts somewhere. Pick one small goal you can finish, or write a short "
                "diary post about what you are learning, and this story will have something "
                "to tell.")
        else:
            opening = f"Here is how {span} went for {who if profile.name else 'you'}{role}."
            if request.completed:
                done = [f"{_quoted(g)} ({_PERIOD_WORDS.get(g.period, g.period.lower())}"
                        f" goal, completed {_day(g.completed_at)})"
                        for g in _by_title(request.completed)]
                count = len(done)
                opening += (f" You completed {count} goal{'s' if count > 1 else ''}: "
                            f"{_series(done)}.")
            else:
                opening += " No goal was completed in this period, but the work went on."
            paragraphs.append(opening)
            if request.started:
                new = [_quoted(g) for g in _by_title(request.started)]
                paragraphs.append(f"You set out on {_series(new)}.")
            if request.still_open:
                open_ = [f"{_quoted(g)} (due {_day(g.deadline)})"
                         for g in _by_title(request.still_open)]
                paragraphs.append(f"Still open and waiting for you: {_series(open_)}.")
            if request.posts:
                posts = sorted(request.posts, key=lambda p: (p.published_at or p.title, p.title))
                titles = [f"\u201c{p.title}\u201d" for p in posts]
                paragraphs.append(
                    f"You wrote about it too, publishing {len(titles)} diary "
                    f"post{'s' if len(titles) > 1 else ''}: {_series(titles)}.")
        if profile.target_skills:
            paragraphs.append(
                f"All of this moves you toward the skills you are aiming for: "
                f"{_series(sorted(profile.target_skills))}. Keep going.")
        else:
            paragraphs.append("Keep going: small steps, taken often, add up.")
        return "\n\n".join(paragraphs)

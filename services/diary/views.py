"""What the diary shows: a post, a reply, a like as lists and single answers show them, and
the statements that read them, built once (the viewer and the page's cursor are
parameters). Authors and counters come by join; nothing here counts rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Select,
    String,
    Table,
    bindparam,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)

from services.diary.models import Author, Like, Post, PostStats, PostStatus, Reply
from shared.pagination import Keyset

POSTS = cast(Table, Post.__table__)
LIKES = cast(Table, Like.__table__)
REPLIES = cast(Table, Reply.__table__)
STATS = cast(Table, PostStats.__table__)
AUTHORS = cast(Table, Author.__table__)
posts, likes, replies, stats, authors = POSTS.c, LIKES.c, REPLIES.c, STATS.c, AUTHORS.c

# A literal, not a parameter: the planner proves the feed's partial index from it, also in
# a prepared statement's generic plan.
PUBLISHED = posts.status == literal_column("'PUBLISHED'")
@dataclass(slots=True)
class PostView:
    """A post as a list or a single answer shows it: POST_VIEW's columns, in order."""

    id: str
    title: str
    content: str
    status: str
    author_id: str
    author_name: str | None  # null until auth's profile of the author has arrived
    author_image: str | None
    like_count: int
    reply_count: int
    liked_by_me: bool
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def author(self) -> dict[str, Any]:
        return {"id": self.author_id, "name": self.author_name, "image": self.author_image}


@dataclass(slots=True)
class ReplyView:
    id: str
    post_id: str
    content: str
    author_id: str
    author_name: str | None
    author_image: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def author(self) -> dict[str, Any]:
        return {"id": self.author_id, "name": self.author_name, "image": self.author_image}


@dataclass(slots=True)
class LikeView:
    id: str
    user_id: str
    author_name: str | None
    author_image: str | None
    created_at: datetime

    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.user_id, "name": self.author_name, "image": self.author_image}


def _author() -> tuple[Any, Any]:
    """The author's (or liker's) name and image from the projection, beside their id."""
    return authors.name.label("author_name"), authors.image.label("author_image")


VIEWER = bindparam("viewer_id", type_=String)
# Whether the viewer liked a post: one probe of the unique (user, post) index per post of
# the page. (As a plain EXISTS the planner may hash all of the viewer's likes instead, a
# heap fetch for each one: hundreds for an active reader, on every page.)
LIKED = (select(true().label("liked")).select_from(LIKES)
         .where(likes.user_id == VIEWER, likes.post_id == posts.id).limit(1)
         .lateral("liked"))
# Posts as a list or a single answer shows them: author and counters by join. Built once;
# the viewer is a parameter.
POST_VIEW: Select[Any] = (
    select(posts.id, posts.title, posts.content, posts.status, posts.author_id,
           *_author(),
           func.coalesce(stats.like_count, 0).label("like_count"),
           func.coalesce(stats.reply_count, 0).label("reply_count"),
           func.coalesce(LIKED.c.liked, false()).label("liked_by_me"),
           posts.published_at, posts.created_at, posts.updated_at)
    .select_from(POSTS.outerjoin(STATS, stats.post_id == posts.id)
                 .outerjoin(AUTHORS, authors.user_id == posts.author_id)
                 .outerjoin(LIKED, true()))
)
FEED = Keyset(POST_VIEW.where(PUBLISHED), created=posts.published_at, id_=posts.id,
              row=PostView)
AUTHOR = bindparam("author_id", type_=String)
_BY_AUTHOR = POST_VIEW.where(posts.author_id == AUTHOR)
USER_PAGE = {  # which of a user's posts: all (theirs to see), published, drafts
    None: Keyset(_BY_AUTHOR, created=posts.created_at, id_=posts.id, row=PostView),
    PostStatus.PUBLISHED: Keyset(_BY_AUTHOR.where(PUBLISHED), created=posts.created_at,
                                 id_=posts.id, row=PostView),
    PostStatus.DRAFT: Keyset(_BY_AUTHOR.where(posts.status == literal_column("'DRAFT'")),
                             created=posts.created_at, id_=posts.id, row=PostView),
}
VISIBLE = or_(PUBLISHED, posts.author_id == VIEWER)  # to the viewer: published or theirs


POST = bindparam("post_id", type_=String)
LIKE_VIEW: Select[Any] = (
    select(likes.id, likes.user_id, *_author(), likes.created_at)
    .select_from(LIKES.outerjoin(AUTHORS, authors.user_id == likes.user_id)))
LIKES_OF_POST = Keyset(LIKE_VIEW.where(likes.post_id == POST), created=likes.created_at,
                       id_=likes.id, row=LikeView)


REPLY_VIEW: Select[Any] = (
    select(replies.id, replies.post_id, replies.content, replies.author_id,
           *_author(), replies.created_at, replies.updated_at)
    .select_from(REPLIES.outerjoin(AUTHORS, authors.user_id == replies.author_id)))
REPLIES_OF_POST = Keyset(REPLY_VIEW.where(replies.post_id == POST), created=replies.created_at,
                         id_=replies.id, newest=False, row=ReplyView)



"""Complaint records: who was named, what happened, who took over, how it was resolved.

Supervisors (and admins) see every complaint; a client sees only how many it had
(:func:`complaint_count`, for its report): the text names the answering company's operators
and is the company's own business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

CATEGORIES = ("operator_attitude", "operator_mistake", "no_callback", "service", "payment",
              "other")
STATUSES = ("open", "in_progress", "resolved", "closed")
MAX_TEXT = 4000


class ComplaintError(ValueError):
    """The complaint or the change is not acceptable (the message says why)."""


@dataclass(frozen=True)
class NewComplaint:
    client: str
    category: str
    body: str
    created_by: str
    named_operator: str | None = None
    pbx_id: str | None = None
    linkedid: str | None = None
    taken_over_by: str | None = None


def check_change(current: str, status: str | None, resolution: str | None) -> None:
    """A status change is allowed: no going back from closed, and a complaint is resolved
    or closed only with a resolution written down.

    >>> check_change("open", "resolved", "apologised; call back done")
    >>> try:
    ...     check_change("open", "resolved", None)
    ... except ComplaintError as exc:
    ...     print(exc)
    a resolved complaint needs its resolution
    """
    if status is None:
        return
    if status not in STATUSES:
        raise ComplaintError(f"status must be one of {', '.join(STATUSES)}")
    if current == "closed" and status != "closed":
        raise ComplaintError("a closed complaint stays closed")
    if status in ("resolved", "closed") and not resolution:
        raise ComplaintError(f"a {status} complaint needs its resolution")


async def create(conn: asyncpg.Connection, new: NewComplaint, at: datetime) -> int:
    if new.category not in CATEGORIES:
        raise ComplaintError(f"category must be one of {', '.join(CATEGORIES)}")
    if not new.body.strip() or len(new.body) > MAX_TEXT:
        raise ComplaintError(f"the text is required (at most {MAX_TEXT} characters)")
    known = await conn.fetchval("SELECT 1 FROM clients WHERE code = $1", new.client)
    if not known:
        raise ComplaintError(f"no client {new.client!r}")
    complaint_id: int = await conn.fetchval(
        """INSERT INTO complaints (client, pbx_id, linkedid, named_operator, category, body,
               taken_over_by, created_by, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id""",
        new.client, new.pbx_id, new.linkedid, new.named_operator, new.category, new.body,
        new.taken_over_by, new.created_by, at)
    return complaint_id


async def update(conn: asyncpg.Connection, complaint_id: int, *, by: str, at: datetime,
                 status: str | None = None, resolution: str | None = None,
                 taken_over_by: str | None = None) -> dict[str, Any]:
    async with conn.transaction():
        row = await conn.fetchrow("SELECT * FROM complaints WHERE id = $1 FOR UPDATE",
                                  complaint_id)
        if row is None:
            raise LookupError(f"no complaint {complaint_id}")
        if resolution is not None and len(resolution) > MAX_TEXT:
            raise ComplaintError(f"the resolution is at most {MAX_TEXT} characters")
        check_change(row["status"], status, resolution or row["resolution"])
        updated = await conn.fetchrow(
            """UPDATE complaints SET status = coalesce($2, status),
                   resolution = coalesce($3, resolution),
                   taken_over_by = coalesce($4, taken_over_by),
                   updated_at = $5, updated_by = $6
                WHERE id = $1 RETURNING *""",
            complaint_id, status, resolution, taken_over_by, at, by)
    return dict(updated)


async def complaints(conn: asyncpg.Connection, *, client: str | None, status: str | None,
                     limit: int, before_id: int | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT * FROM complaints
            WHERE ($1::text IS NULL OR client = $1) AND ($2::text IS NULL OR status = $2)
              AND ($3::bigint IS NULL OR id < $3)
            ORDER BY id DESC LIMIT $4""", client, status, before_id, limit + 1)
    return [dict(r) for r in rows]


async def complaint_count(conn: asyncpg.Connection, client: str, start: datetime,
                          end: datetime) -> int:
    """How many complaints ``client`` had from ``start`` (inclusive) to ``end`` (exclusive):
    what the client's report shows (never the text nor the operators named)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM complaints WHERE client = $1 AND created_at >= $2 "
        "AND created_at < $3", client, start, end)
    return count

"""User management (admins only)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from narrate.services import users
from narrate.web.deps import AdminUser, Services

__all__ = ["router"]

router = APIRouter(tags=["users"])
# Plain ``def`` routes: argon2 hashing and SQL run in FastAPI's thread pool, off the loop.

Role = Literal["admin", "analyst", "viewer"]


class UserIn(BaseModel):
    """A new user."""

    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=8, max_length=200)
    role: Role = "analyst"


class UserPatch(BaseModel):
    """A change of role or activation."""

    role: Role | None = None
    is_active: bool | None = None


@router.post("/users", status_code=201, summary="Create a user")
def create_user(body: UserIn, _admin: AdminUser, services: Services) -> Any:
    """Create a user with a role."""
    return users.user_to_dict(
        users.create_user(services.db, body.username, body.password, body.role)
    )


@router.get("/users", summary="List users")
def list_users(_admin: AdminUser, services: Services) -> dict[str, Any]:
    """Every user."""
    return {"items": [users.user_to_dict(u) for u in users.list_users(services.db)]}


@router.patch("/users/{user_id}", summary="Change a user's role or deactivate them")
def patch_user(user_id: str, body: UserPatch, _admin: AdminUser, services: Services) -> Any:
    """Change role and/or activation."""
    user = users.update_user(services.db, user_id, role=body.role, is_active=body.is_active)
    return users.user_to_dict(user)

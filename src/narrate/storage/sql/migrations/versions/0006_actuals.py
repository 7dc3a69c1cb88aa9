"""prediction actuals: the ground truth posted for logged predictions of a deployment

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 17:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_actuals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("deployment_id", sa.String(length=32), nullable=False),
        sa.Column("prediction_id", sa.String(length=64), nullable=False),
        sa.Column("actual", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced", sa.Integer(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "prediction_id"),
    )
    with op.batch_alter_table("prediction_actuals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prediction_actuals_deployment_received",
            ["deployment_id", "received_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_prediction_actuals_owner_id"), ["owner_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("prediction_actuals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prediction_actuals_owner_id"))
        batch_op.drop_index("ix_prediction_actuals_deployment_received")

    op.drop_table("prediction_actuals")

"""retraining: retrain runs of a deployment (champion vs challenger and the decision)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retrain_runs",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column(
            "deployment_id", sa.String(length=32), sa.ForeignKey("deployments.id"), nullable=False
        ),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("trigger_ref", sa.String(length=64), nullable=True),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("champion_version_id", sa.String(length=32), nullable=False),
        sa.Column("challenger_version_id", sa.String(length=32), nullable=True),
        sa.Column("dataset_version_id", sa.String(length=32), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("n_train_rows", sa.Integer(), nullable=True),
        sa.Column("n_eval_rows", sa.Integer(), nullable=True),
        sa.Column("metric", sa.String(length=32), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("auto_promote", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("narrative", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.String(length=32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_retrain_runs_deployment_id", "retrain_runs", ["deployment_id"])
    op.create_index("ix_retrain_runs_owner_id", "retrain_runs", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_retrain_runs_owner_id", table_name="retrain_runs")
    op.drop_index("ix_retrain_runs_deployment_id", table_name="retrain_runs")
    op.drop_table("retrain_runs")

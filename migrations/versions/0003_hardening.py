"""hardening: security stamps, one feedback row per rating, ids never reused on SQLite

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 21:30:00

Self-contained (no app imports), so it runs the same way whatever the app becomes.
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Integer-keyed tables. SQLite hands the largest freed rowid to the next insert unless the table
# is declared AUTOINCREMENT, which only a rebuild can add (PostgreSQL sequences never reuse ids).
AUTOINCREMENT_TABLES = (
    'users',
    'documents',
    'citations',
    'token_usage',
    'feedback',
    'unanswered_questions',
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


def _rebuild_sqlite_tables(autoincrement: bool) -> None:
    # env.py turns foreign keys off on SQLite while migrating: dropping the old copy of `users`
    # would otherwise cascade into every chat and session.
    for table in AUTOINCREMENT_TABLES:
        with op.batch_alter_table(
            table, recreate='always', table_kwargs={'sqlite_autoincrement': autoincrement}
        ):
            pass


def upgrade():
    sqlite = _is_sqlite()
    # Security stamps: every existing user gets a random one. Tokens issued before this revision
    # carry none and stop working, so everyone signs in once more.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('security_stamp', sa.String(length=32), nullable=True))
    random_hex = 'lower(hex(randomblob(16)))' if sqlite else 'md5(random()::text || id::text)'
    op.execute(f'UPDATE users SET security_stamp = {random_hex}')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('security_stamp', existing_type=sa.String(length=32), nullable=False)

    # Concurrent ratings left duplicates: keep the newest of each (user, answer, citation).
    op.execute(
        """
        DELETE FROM feedback WHERE id NOT IN (
            SELECT MAX(id) FROM feedback GROUP BY user_id, message_id, citation_id
        )
        """
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(
            'uq_feedback_answer',
            ['user_id', 'message_id'],
            unique=True,
            sqlite_where=sa.text('citation_id IS NULL'),
            postgresql_where=sa.text('citation_id IS NULL'),
        )
        batch_op.create_unique_constraint(
            'uq_feedback_citation', ['user_id', 'message_id', 'citation_id']
        )
    if sqlite:
        # Last: any later batch operation would rebuild the table again without the keyword.
        _rebuild_sqlite_tables(autoincrement=True)


def downgrade():
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_constraint('uq_feedback_citation', type_='unique')
        batch_op.drop_index('uq_feedback_answer')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('security_stamp')
    if _is_sqlite():
        _rebuild_sqlite_tables(autoincrement=False)

"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 13:21:05.654760

"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


# The registry as this revision seeded it, copied rather than imported: a migration must run the
# same way forever, whatever later versions of the app do to wwhd.knowledge.namespaces.
SEED_NAMESPACES = [
    {
        'name': 'general',
        'description': 'Life philosophy, habits, learning and anything that spans topics.',
        'keywords': [
            'life',
            'habit',
            'habits',
            'purpose',
            'learning',
            'discipline',
            'advice',
            'mindset',
            'happiness',
            'motivation',
            'goals',
            'routine',
            'wisdom',
            'change',
        ],
    },
    {
        'name': 'relationships',
        'description': 'Partners, marriage, family, friends and communication.',
        'keywords': [
            'relationship',
            'wife',
            'husband',
            'partner',
            'marriage',
            'married',
            'dating',
            'family',
            'kids',
            'children',
            'parents',
            'friend',
            'friends',
            'argue',
            'argument',
            'fight',
            'love',
            'divorce',
            'communication',
            'spouse',
            'boyfriend',
            'girlfriend',
            'son',
            'daughter',
        ],
    },
    {
        'name': 'money',
        'description': 'Saving, spending, debt, budgeting and investing.',
        'keywords': [
            'money',
            'save',
            'saving',
            'savings',
            'debt',
            'budget',
            'spend',
            'spending',
            'invest',
            'investing',
            'retirement',
            'credit',
            'card',
            'loan',
            'mortgage',
            'salary',
            'income',
            'wealth',
            'rich',
            'broke',
            'paycheck',
            'emergency',
            'fund',
        ],
    },
    {
        'name': 'business',
        'description': 'Starting and running a small business, customers, pricing, staff.',
        'keywords': [
            'business',
            'customer',
            'customers',
            'client',
            'clients',
            'pricing',
            'price',
            'prices',
            'employee',
            'employees',
            'staff',
            'hire',
            'hiring',
            'startup',
            'shop',
            'sales',
            'marketing',
            'profit',
            'boss',
            'entrepreneur',
            'company',
            'partner',
            'cash',
            'negotiate',
        ],
    },
    {
        'name': 'feng_shui',
        'description': 'Arranging the home and workspace: layout, light, clutter, energy.',
        'keywords': [
            'feng',
            'shui',
            'home',
            'house',
            'room',
            'bedroom',
            'desk',
            'door',
            'entrance',
            'clutter',
            'furniture',
            'bed',
            'mirror',
            'plants',
            'layout',
            'apartment',
            'kitchen',
            'chi',
            'qi',
            'decorate',
            'office',
            'window',
        ],
    },
    {
        'name': 'diet_food',
        'description': 'Simple eating, cooking, meals, fasting and nutrition habits.',
        'keywords': [
            'diet',
            'food',
            'eat',
            'eating',
            'meal',
            'meals',
            'breakfast',
            'lunch',
            'dinner',
            'cook',
            'cooking',
            'recipe',
            'sugar',
            'fasting',
            'weight',
            'vegetables',
            'soup',
            'rice',
            'tea',
            'nutrition',
            'hungry',
            'snack',
            'protein',
        ],
    },
    {
        'name': 'exercise_martial_arts',
        'description': 'Training, martial arts, stretching, strength and fitness.',
        'keywords': [
            'exercise',
            'training',
            'train',
            'martial',
            'arts',
            'kung',
            'fu',
            'tai',
            'chi',
            'stance',
            'kick',
            'punch',
            'stretch',
            'stretching',
            'strength',
            'fitness',
            'workout',
            'sparring',
            'injury',
            'knee',
            'back',
            'push',
            'ups',
            'running',
            'gym',
            'fight',
        ],
    },
    {
        'name': 'meditation',
        'description': 'Meditation, breathing, stress, sleep and attention.',
        'keywords': [
            'meditation',
            'meditate',
            'breath',
            'breathing',
            'breathe',
            'calm',
            'stress',
            'anxiety',
            'anxious',
            'sleep',
            'mind',
            'mindfulness',
            'focus',
            'attention',
            'thoughts',
            'relax',
            'worry',
            'peace',
            'panic',
        ],
    },
]


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        'namespaces',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('description', sa.String(length=500), nullable=False),
        sa.Column('keywords', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'unanswered_questions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('normalized', sa.String(length=500), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('namespace_guess', sa.String(length=64), nullable=True),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('first_seen', sa.DateTime(), nullable=False),
        sa.Column('last_seen', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('normalized'),
    )
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('display_name', sa.String(length=120), nullable=True),
        sa.Column('settings', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_login_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_email'), ['email'], unique=True)
        batch_op.create_index(batch_op.f('ix_users_username'), ['username'], unique=True)

    op.create_table(
        'auth_sessions',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_sessions_user_id'), ['user_id'], unique=False)

    op.create_table(
        'chats',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chats_updated_at'), ['updated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_chats_user_id'), ['user_id'], unique=False)

    op.create_table(
        'documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('namespace', sa.String(length=64), nullable=False),
        sa.Column('title', sa.String(length=300), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('source_url', sa.String(length=1000), nullable=True),
        sa.Column('youtube_url', sa.String(length=1000), nullable=True),
        sa.Column('published_at', sa.String(length=32), nullable=True),
        sa.Column('tags', sa.JSON(), nullable=False),
        sa.Column('checksum', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('chunk_count', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=300), nullable=True),
        sa.Column('original_key', sa.String(length=500), nullable=True),
        sa.Column('size_bytes', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('indexed_at', sa.DateTime(), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(
            ['namespace'],
            ['namespaces.name'],
        ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('checksum'),
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_documents_namespace'), ['namespace'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_status'), ['status'], unique=False)

    op.create_table(
        'chunks',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('index', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('start_s', sa.Float(), nullable=True),
        sa.Column('end_s', sa.Float(), nullable=True),
        sa.Column('page', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('document_id', 'index', name='uq_chunks_document_index'),
    )
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chunks_document_id'), ['document_id'], unique=False)

    op.create_table(
        'messages',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('chat_id', sa.String(length=36), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('model', sa.String(length=120), nullable=True),
        sa.Column('namespaces', sa.JSON(), nullable=False),
        sa.Column('meta', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('completed_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['chat_id'], ['chats.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('chat_id', 'seq', name='uq_messages_chat_seq'),
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_chat_id'), ['chat_id'], unique=False)

    op.create_table(
        'citations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(length=36), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=True),
        sa.Column('chunk_id', sa.String(length=36), nullable=True),
        sa.Column('title', sa.String(length=300), nullable=False),
        sa.Column('url', sa.String(length=1000), nullable=False),
        sa.Column('youtube_url', sa.String(length=1000), nullable=False),
        sa.Column('timestamp', sa.String(length=16), nullable=False),
        sa.Column('namespace', sa.String(length=64), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('citations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_citations_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_citations_message_id'), ['message_id'], unique=False)

    op.create_table(
        'token_usage',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('message_id', sa.String(length=36), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('model', sa.String(length=120), nullable=False),
        sa.Column('prompt_tokens', sa.Integer(), nullable=False),
        sa.Column('completion_tokens', sa.Integer(), nullable=False),
        sa.Column('total_tokens', sa.Integer(), nullable=False),
        sa.Column('cost_usd', sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('token_usage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_usage_day'), ['day'], unique=False)
        batch_op.create_index(batch_op.f('ix_token_usage_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_token_usage_user_id'), ['user_id'], unique=False)

    op.create_table(
        'feedback',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('citation_id', sa.Integer(), nullable=True),
        sa.Column('rating', sa.String(length=8), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['citation_id'], ['citations.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_user_id'), ['user_id'], unique=False)

    # ### end Alembic commands ###
    # Seed the namespace registry (router, ingestion and the namespaces endpoint all read it).
    namespaces = sa.table(
        "namespaces",
        sa.column("name", sa.String),
        sa.column("description", sa.String),
        sa.column("keywords", sa.JSON),
        sa.column("created_at", sa.DateTime),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(namespaces, [{**item, "created_at": now} for item in SEED_NAMESPACES])


def downgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_user_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_message_id'))

    op.drop_table('feedback')
    with op.batch_alter_table('token_usage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_usage_user_id'))
        batch_op.drop_index(batch_op.f('ix_token_usage_message_id'))
        batch_op.drop_index(batch_op.f('ix_token_usage_day'))

    op.drop_table('token_usage')
    with op.batch_alter_table('citations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_citations_message_id'))
        batch_op.drop_index(batch_op.f('ix_citations_document_id'))

    op.drop_table('citations')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_chat_id'))

    op.drop_table('messages')
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chunks_document_id'))

    op.drop_table('chunks')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_status'))
        batch_op.drop_index(batch_op.f('ix_documents_namespace'))

    op.drop_table('documents')
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chats_user_id'))
        batch_op.drop_index(batch_op.f('ix_chats_updated_at'))

    op.drop_table('chats')
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_sessions_user_id'))

    op.drop_table('auth_sessions')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_username'))
        batch_op.drop_index(batch_op.f('ix_users_email'))

    op.drop_table('users')
    op.drop_table('unanswered_questions')
    op.drop_table('namespaces')
    # ### end Alembic commands ###

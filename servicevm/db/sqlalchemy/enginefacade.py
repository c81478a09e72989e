"""The one transaction context manager of servicevm, and its engine set-up."""

import sqlite3

from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa

main_context_manager = enginefacade.transaction_context()
reader = main_context_manager.reader
writer = main_context_manager.writer


@sa.event.listens_for(sa.engine.Engine, 'connect')
def _sqlite_pragmas(dbapi_connection, connection_record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; the busy timeout makes a
    # second writer wait instead of failing with "database is locked".
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA busy_timeout=30000')
    cursor.execute('PRAGMA foreign_keys=ON')
    cursor.close()


def get_engine():
    return main_context_manager.writer.get_engine()

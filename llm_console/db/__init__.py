"""Database access: engine, tables and query modules."""

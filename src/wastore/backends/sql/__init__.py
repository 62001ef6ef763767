"""What the SQL backends share: schema and migrations, statements, row codecs."""

"""The clients an answering company picks up the phone for: the clients file, its validation,
and the copy in PostgreSQL that routing reads."""

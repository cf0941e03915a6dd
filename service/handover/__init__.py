"""引き継ぎ: a client's whole history exported as a documented bundle, and imported."""

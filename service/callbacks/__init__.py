"""Call backs: obligations to call a caller back, their honest fulfilment, repeat callers."""

"""What is searched: one module per study space."""

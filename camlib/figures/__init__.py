"""Key figures of the course, one module per notebook."""

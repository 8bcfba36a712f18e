"""History store revisions, oldest first by ``down_revision``."""

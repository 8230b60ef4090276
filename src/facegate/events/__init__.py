"""Events: what happened at cameras and doors, stored, snapshotted and handed to every sink."""

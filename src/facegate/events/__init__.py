"""Events: what happened at cameras and doors, stored and (later) published to sinks."""

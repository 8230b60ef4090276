"""One router per resource of the REST service, each a table of contents of its routes."""

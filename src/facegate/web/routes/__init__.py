"""The console's pages, one module per part: sign-in, people, events, audit, cameras."""

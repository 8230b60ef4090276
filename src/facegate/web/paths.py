"""Which paths are the console's: the API's gate lets them through to the console's own sign-in."""

# First path segments of every console route ("" is `/` itself). A test holds the routes to it.
CONSOLE_ROOTS = frozenset(
    {"", "login", "logout", "people", "events", "audit", "evals", "cameras", "doors", "static"}
)


def is_console_path(path: str) -> bool:
    return path.split("/", 2)[1] in CONSOLE_ROOTS if path.startswith("/") else False

"""`nox -s verify`: the acceptance journey against a deployed environment."""
